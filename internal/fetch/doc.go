// Package fetch retrieves SUIT payloads and dependency envelopes for the
// processor (it implements processor.Fetcher): over HTTPS with size limits
// and timeouts, and from local files for offline use.
package fetch
