package verifier

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/teep-go/teep/cosekey"
	"github.com/teep-go/teep/eat"
)

func TestLoadPolicyExample(t *testing.T) {
	p, err := LoadPolicy("testdata/policy.json")
	if err != nil {
		t.Fatal(err)
	}
	want, err := cosekey.Parse(mustRead(t, "../../testdata/suit/keys/example-p256-public.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Endorsements) != 1 || !p.Endorsements[0].Key.Equal(want) || p.Endorsements[0].Name != "softtee-lab-devices" {
		t.Fatalf("endorsements %+v", p.Endorsements)
	}
	e := p.Endorsements[0]
	if !e.OEMID.Equal(eat.OEMIDBytes([]byte{0x89, 0x48, 0x23})) || string(e.HWModels[0]) != "softtee" {
		t.Errorf("endorsement constraints %+v", e)
	}
	if len(p.Devices) != 1 || p.Devices[0].MinSWVersion != "0.2.0" || !p.RequireDebugDisabled {
		t.Errorf("reference values %+v", p)
	}
	if p.MaxAge != 5*time.Minute || p.ClockSkew != 30*time.Second || p.ResultTTL != 10*time.Minute {
		t.Errorf("windows %v %v %v", p.MaxAge, p.ClockSkew, p.ResultTTL)
	}
	if len(p.RequiredClaims) != 6 || len(p.DeniedUEIDs) != 1 || len(p.KnownManifests) != 1 || p.KnownManifests[0].DigestAlg != eat.AlgSHA256 {
		t.Errorf("lists %+v", p)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jwk is the published example key as a JWK.
var jwk = func() string {
	b, err := os.ReadFile("../../testdata/suit/keys/example-p256-public.pem")
	if err != nil {
		panic(err)
	}
	k, err := cosekey.Parse(b)
	if err != nil {
		panic(err)
	}
	j, err := k.MarshalJWK(false)
	if err != nil {
		panic(err)
	}
	return string(j)
}()

func hexs(b []byte) string { return hex.EncodeToString(b) }

func TestParsePolicy(t *testing.T) {
	p, err := ParsePolicy([]byte(`{"endorsements":[{"key":` + jwk + `}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.Endorsements[0].Name != "endorsement-0" || p.MaxAge != DefaultMaxAge || len(p.RequiredClaims) != len(eat.RequiredTEEPClaims) {
		t.Errorf("defaults not applied: %+v", p)
	}
	pem := strings.ReplaceAll(string(mustRead(t, "../../testdata/suit/keys/example-p256-public.pem")), "\n", `\n`)
	if _, err := ParsePolicy([]byte(`{"endorsements":[{"key":"` + pem + `"}], "required_claims": []}`)); err != nil {
		t.Errorf("PEM key: %v", err)
	}
	k, _ := cosekey.Parse([]byte(jwk))
	ck, _ := k.MarshalCOSEKey(false)
	if _, err := ParsePolicy([]byte(`{"endorsements":[{"key":"` + hexs(ck) + `","oemid":32473}]}`)); err != nil {
		t.Errorf("COSE_Key key: %v", err)
	}

	cases := []struct{ name, json, want string }{
		{"unknown field", `{"endorsements":[{"key":` + jwk + `}],"max_agee":"1m"}`, "unknown field"},
		{"duplicate member", `{"id":"a","id":"b"}`, `duplicate member "id"`},
		{"nested duplicate", `{"endorsements":[{"key":` + jwk + `,"name":"x","name":"y"}]}`, `duplicate member "name"`},
		{"trailing data", `{"id":"a"} {"id":"b"}`, "trailing data"},
		{"not json", `{"id":`, "unexpected"},
		{"bad hex", `{"denied_ueids":["zz"]}`, "bad hex"},
		{"short ueid", `{"denied_ueids":["0102"]}`, "2 bytes, want 7..33"},
		{"bad duration", `{"max_age":"soon"}`, "max_age"},
		{"negative duration", `{"result_ttl":"-1m"}`, "result_ttl"},
		{"unknown claim", `{"required_claims":["ueid","colour"]}`, `unknown claim "colour"`},
		{"no key", `{"endorsements":[{"name":"x"}]}`, "key or key_file required"},
		{"both keys", `{"endorsements":[{"key":` + jwk + `,"key_file":"k.pem"}]}`, "both key and key_file"},
		{"key_file without a file system", `{"endorsements":[{"key_file":"k.pem"}]}`, "needs LoadPolicy"},
		{"bad key", `{"endorsements":[{"key":"00"}]}`, "key:"},
		{"bad oemid", `{"endorsements":[{"key":` + jwk + `,"oemid":"01020304"}]}`, "want 3 (IEEE OUI) or 16"},
		{"bad version", `{"devices":[{"hwmodel":"01","min_swversion":"latest"}]}`, "not a number"},
		{"hwmodel missing", `{"devices":[{"min_swversion":"1.0"}]}`, "hwmodel"},
		{"manifest without uri", `{"known_manifests":[{"digest":"00"}]}`, "uri missing"},
		{"too deep", strings.Repeat("[", 20) + strings.Repeat("]", 20), "deeper than 16"},
		{"too large", `{"id":"` + strings.Repeat("a", MaxPolicySize) + `"}`, "limit"},
	}
	for _, tc := range cases {
		_, err := ParsePolicy([]byte(tc.json))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestLoadPolicyKeyFile(t *testing.T) {
	dir := t.TempDir()
	k := newKey(t, "ed25519")
	pub, _ := k.MarshalPEM(false)
	if err := os.WriteFile(filepath.Join(dir, "att.pem"), pub, 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "policy.json")
	os.WriteFile(path, []byte(`{"endorsements":[{"key_file":"att.pem"}]}`), 0o644)
	p, err := LoadPolicy(path)
	if err != nil || !p.Endorsements[0].Key.Equal(k) {
		t.Fatalf("%v %+v", err, p)
	}
	os.WriteFile(path, []byte(`{"endorsements":[{"key_file":"missing.pem"}]}`), 0o644)
	if _, err := LoadPolicy(path); err == nil || !strings.Contains(err.Error(), "missing.pem") {
		t.Errorf("missing key file: %v", err)
	}
	if _, err := LoadPolicy(filepath.Join(dir, "nope.json")); err == nil {
		t.Error("loaded a missing policy")
	}
}

func FuzzParsePolicy(f *testing.F) {
	f.Add(mustReadF(f, "testdata/policy.json"))
	f.Add([]byte(`{"endorsements":[{"key":` + jwk + `,"oemid":32473,"hwmodels":["01"]}],"devices":[{"hwmodel":"01","min_hwversion":"1.0-rc.1"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePolicy(data)
		if err != nil {
			return
		}
		if p.MaxAge < 0 || p.ResultTTL < 0 || p.RequiredClaims == nil {
			t.Fatalf("accepted an invalid policy: %+v", p)
		}
		for _, e := range p.Endorsements {
			if e.Key == nil || e.Key.IsPrivate() {
				t.Fatal("endorsement without a public key")
			}
		}
	})
}

func mustReadF(f *testing.F, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	return b
}
