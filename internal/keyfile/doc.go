// Package keyfile reads and writes key files in any format cosekey knows
// (COSE_Key, PEM, JWK). Private keys are written with mode 0600, atomically,
// so a crash never leaves a half-written key behind.
package keyfile
