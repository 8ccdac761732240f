// Package storetest checks a processor.ComponentStore against the contract
// documented on that interface: transactions, read-your-writes, atomic
// commit, abort, manifest record round trips and not-found errors. Store
// implementations (the in-memory store, the directory store, a TEE's sealed
// store) run the same suite:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) processor.ComponentStore { return NewMyStore(t.TempDir()) })
//	}
package storetest
