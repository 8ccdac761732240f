package processor_test

import (
	"context"
	"testing"

	"github.com/teep-go/teep/suit"
	"github.com/teep-go/teep/suit/processor"
)

// FuzzInstall runs the Update procedure on arbitrary envelopes: it must
// never panic, always produce a report, and leave the store unchanged on
// failure. Mutations of signed vectors mostly fail authentication; the
// MAC-authenticated seed lets the fuzzer reach the command engine only
// through valid MACs, so the MAC key is trusted too.
func FuzzInstall(f *testing.F) {
	for _, n := range []string{"teep-protocol/suit_uri.hex", "teep-protocol/suit_integrated.hex", "teep-protocol/suit_personalization.hex",
		"trust-domains/example2_integrated.hex", "firmware-encryption/suit-manifest-aes-kw.hex", "firmware-encryption/suit-manifest-es-ecdh-dependency.hex",
		"manifest-spec/example3.signed.cbor", "manifest-spec/example4.signed.cbor"} {
		f.Add(readVector(f, n))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e := newEnv(t, func(c *processor.Config) {
			c.DeviceKey = loadKey(t, "device-p256-private.pem")
			c.Trust = append(c.Trust, loadKey(t, "tam-p256-public.pem"))
		})
		res, err := e.p.Install(context.Background(), data, processor.RunOptions{})
		if res == nil || res.Report == nil || res.ReportBytes == nil {
			t.Fatal("no report")
		}
		if _, perr := suit.ParseReport(res.ReportBytes); perr != nil {
			t.Fatalf("report does not parse: %v", perr)
		}
		if err != nil {
			storeEmpty(t, e)
		}
	})
}
