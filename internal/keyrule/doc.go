// Package keyrule checks the naming rule of the project's machine output
// (docs/architecture.md, Machine output): keys we define are snake_case;
// protocol label names (draft-ietf-teep-protocol-26 §11, draft-ietf-suit-manifest
// §8.4.8, draft-ietf-suit-report) appear only where the key is that label.
// Tests of every package that prints or serves JSON hold their output to it.
package keyrule
