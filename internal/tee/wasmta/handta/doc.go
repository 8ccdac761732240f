// Package handta holds Trusted Applications assembled by hand, byte by
// byte, in the WebAssembly binary format (WebAssembly Core Specification
// 2.0, §5), for the host ABI of package wasmta (docs/trusted-apps.md).
// They need no compiler at run time, so `teep demo` and `teep bench` can
// install and run a TA on any machine that has the teep binary.
package handta
