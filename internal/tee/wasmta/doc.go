// Package wasmta runs WebAssembly Trusted Applications (RFC 9397 §2: a
// Trusted Application is a Trusted Component that executes in a TEE) for
// a software TEE, with the pure-Go wazero runtime so that CGO_ENABLED=0
// builds keep working.
//
// Isolation: every invocation gets a fresh module instance (the compiled
// module is cached by the SHA-256 digest of its code), so no memory or
// globals survive from one call to the next; persistent state goes through
// the host's sealed storage, which the caller scopes to one Trusted
// Component. Limits (memory pages, wall time, input, output, log, storage
// key and value sizes, concurrent invocations) are the fields of Limits.
//
// The host ABI is the import module "teep" (docs/trusted-apps.md). Go's
// GOOS=wasip1 programs also need wasi_snapshot_preview1 to start: it is
// provided with no preopened directories, no environment, no arguments
// but the program name, stdin empty, stdout and stderr sent to the log,
// the system clock and the system random source. No file system, no
// sockets.
package wasmta
