// Package storetest is the conformance suite every tam.Store implementation
// runs: `storetest.Run(t, func(t *testing.T) tam.Store { ... })`. Each
// subtest gets a fresh, empty store.
package storetest
