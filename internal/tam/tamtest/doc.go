// Package tamtest runs a complete TAM for tests: SQLite in t.TempDir(), the
// TEEP HTTP binding and the admin API on 127.0.0.1:0, optionally over TLS,
// with a built-in Verifier. It also provides a scripted TEEP Agent
// (NewAgent) built on the teep package and the real SUIT processor.
//
//	srv := tamtest.Start(t, tamtest.Options{})
//	srv.TrustSigner(signerKey)
//	id := srv.Upload(envelope)
//	srv.Require(id)
//	// point a device at srv.URL, trusting srv.Key()
package tamtest
