//go:build wasip1

// Command signer is an example Trusted Application (docs/trusted-apps.md):
// it holds an Ed25519 private key that exists only in its sealed storage.
// The key is generated on first use; the input "pub" answers the public
// key, "sign <message>" the signature of message (both hex). Nothing else
// leaves: no command outputs the private key, no other TA can read it, an
// update of the TA keeps it and removing the TA destroys it.
// Build: GOOS=wasip1 GOARCH=wasm go build -o signer.wasm .
package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"unsafe"
)

//go:wasmimport teep input_size
func inputSize() uint32

//go:wasmimport teep input_read
func inputRead(p unsafe.Pointer, n uint32) uint32

//go:wasmimport teep output_write
func outputWrite(p unsafe.Pointer, n uint32) int32

//go:wasmimport teep sealed_get
func sealedGet(kp unsafe.Pointer, kn uint32, vp unsafe.Pointer, vcap uint32) int32

//go:wasmimport teep sealed_put
func sealedPut(kp unsafe.Pointer, kn uint32, vp unsafe.Pointer, vn uint32) int32

// seedKey names the private key (its RFC 8032 seed) in sealed storage.
const seedKey = "ed25519-seed"

// version is set at build time (-ldflags=-X main.version=2) so that an
// update is visible; it is not part of any output the key depends on.
var version = "1"

func ptr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "signer v%s: "+format+"\n", append([]any{version}, a...)...)
	os.Exit(1)
}

// key loads the private key, generating and sealing it on first use.
func key() ed25519.PrivateKey {
	k := []byte(seedKey)
	seed := make([]byte, ed25519.SeedSize)
	switch n := sealedGet(ptr(k), uint32(len(k)), ptr(seed), uint32(len(seed))); n {
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(seed)
	case -1: // first use
	default:
		fail("sealed key has %d bytes", n)
	}
	if _, err := rand.Read(seed); err != nil {
		fail("random: %v", err)
	}
	if sealedPut(ptr(k), uint32(len(k)), ptr(seed), uint32(len(seed))) != 0 {
		fail("sealing the new key failed")
	}
	return ed25519.NewKeyFromSeed(seed)
}

func main() {
	in := make([]byte, inputSize())
	inputRead(ptr(in), uint32(len(in)))
	cmd, msg, _ := strings.Cut(string(in), " ")
	var out string
	switch cmd {
	case "pub":
		out = hex.EncodeToString(key().Public().(ed25519.PublicKey))
	case "sign":
		out = hex.EncodeToString(ed25519.Sign(key(), []byte(msg)))
	default:
		fail("unknown command %q (want pub or sign <message>)", cmd)
	}
	b := []byte(out)
	if outputWrite(ptr(b), uint32(len(b))) != 0 {
		fail("output refused")
	}
}
