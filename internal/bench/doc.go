// Package bench is what `teep bench` runs: measurements of the TEEP codec
// (draft-ietf-teep-protocol-26, its Appendix D Update), of a SUIT install
// streaming a payload (draft-ietf-suit-manifest), and of TAM sessions over
// loopback HTTP (draft-ietf-teep-otrp-over-http-15) with a fleet of devices,
// each against a baseline measured in the same run: the machines it runs on
// are noisy, so only ratios mean much. It times with its own loops (no
// package testing, which the binary must not link).
package bench
