package main

import (
	"encoding/hex"
	"fmt"
	"os"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/internal/keyfile"
)

func init() {
	register(&command{path: "key generate", summary: "generate a signing key (ESP256 or Ed25519)", run: keyGenerate})
	register(&command{path: "key public", summary: "print the public half of a key", run: keyPublic})
	register(&command{path: "key thumbprint", summary: "print a key's RFC 9679 thumbprint (its kid)", run: keyThumbprint})
	register(&command{path: "key convert", summary: "convert a key between COSE_Key, PEM and JWK", run: keyConvert})
}

func keyGenerate(e *env, args []string) error {
	fs := newFlags(e, "key generate", "--alg esp256|ed25519 --out FILE [--format cose|pem|jwk] [--force]",
		"Writes a new private key (mode 0600) and prints its kid, the RFC 9679 thumbprint, in hex.")
	alg := fs.String("alg", "esp256", "signature algorithm: esp256 (P-256) or ed25519")
	out := fs.String("out", "", "output file (required)")
	format := fs.String("format", "cose", "file format: cose, pem or jwk")
	force := fs.Bool("force", false, "overwrite an existing file")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *out == "" {
		return usagef("want --out FILE and no arguments")
	}
	a, err := cosekey.ParseAlg(*alg)
	if err != nil {
		return usageError{err.Error()}
	}
	if !*force {
		if _, err := os.Stat(*out); err == nil {
			return fmt.Errorf("%s exists (use --force to overwrite)", *out)
		}
	}
	k, err := cosekey.Generate(a)
	if err != nil {
		return err
	}
	if err := keyfile.Save(*out, k, cosekey.Format(*format), true); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, hex.EncodeToString(k.KID()))
	return nil
}

func keyPublic(e *env, args []string) error {
	fs := newFlags(e, "key public", "FILE [--format cose|pem|jwk]",
		"Prints the public key of FILE (COSE_Key, PEM or JWK). COSE output is raw CBOR.")
	format := fs.String("format", "pem", "output format: cose, pem or jwk")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one key FILE")
	}
	k, err := keyfile.Load(pos[0])
	if err != nil {
		return err
	}
	out, err := k.Marshal(cosekey.Format(*format), false)
	if err != nil {
		return err
	}
	_, err = e.stdout.Write(out)
	return err
}

func keyThumbprint(e *env, args []string) error {
	fs := newFlags(e, "key thumbprint", "FILE", "Prints the RFC 9679 COSE Key Thumbprint (SHA-256) of FILE in hex.")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one key FILE")
	}
	k, err := keyfile.Load(pos[0])
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, hex.EncodeToString(k.Thumbprint()))
	return nil
}

func keyConvert(e *env, args []string) error {
	fs := newFlags(e, "key convert", "FILE --format cose|pem|jwk --out FILE [--public]",
		"Re-encodes a key. Private keys stay private (mode 0600) unless --public is given.")
	format := fs.String("format", "pem", "output format: cose, pem or jwk")
	out := fs.String("out", "", "output file (required)")
	public := fs.Bool("public", false, "write only the public key")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *out == "" {
		return usagef("want one key FILE and --out FILE")
	}
	k, err := keyfile.Load(pos[0])
	if err != nil {
		return err
	}
	return keyfile.Save(*out, k, cosekey.Format(*format), k.IsPrivate() && !*public)
}
