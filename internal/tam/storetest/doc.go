// Package storetest is the conformance suite every tam.Store implementation
// runs: `storetest.Run(t, func(t *testing.T) tam.Store { ... })`. Each
// subtest gets a fresh, empty store. The suite is organized like tam.Tx:
// one file and one subtest group per aggregate interface (component.go
// tests ComponentTx, device.go DeviceTx, ...), plus transaction.go for
// Store.Update and View.
package storetest
