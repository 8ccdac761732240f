package eat

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// The printed cnf shows the kids that are on the wire, never a computed
// thumbprint, and a kid that is not the key's thumbprint is a warning.
func TestCNFShowsWireKIDAndWarnsOnMismatch(t *testing.T) {
	key, _ := newSigner(t, "esp256")
	// Deterministic input: the re-encoding below is compared byte for byte.
	det, _ := cbor.CoreDetEncOptions().EncMode()
	tp := key.Thumbprint()
	coseKey := func(kid []byte) cbor.RawMessage {
		raw, err := key.PublicKey().MarshalCOSEKey(false)
		if err != nil {
			t.Fatal(err)
		}
		var m map[int64]cbor.RawMessage
		if err := cbor.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		delete(m, 2)
		if kid != nil {
			m[2], _ = det.Marshal(kid)
		}
		out, _ := det.Marshal(m)
		return out
	}
	cases := []struct {
		name     string
		cnf      map[int64]any
		jwkKID   string // "" = the JWK must have no kid
		warnings []string
	}{
		{"COSE_Key without kid", map[int64]any{1: coseKey(nil)}, "", nil},
		{"COSE_Key kid is the thumbprint", map[int64]any{1: coseKey(tp)}, base64.RawURLEncoding.EncodeToString(tp), nil},
		{"COSE_Key kid is a name", map[int64]any{1: coseKey([]byte("agent-1"))}, base64.RawURLEncoding.EncodeToString([]byte("agent-1")),
			[]string{"cnf COSE_Key kid 6167656e742d31 is not its thumbprint"}},
		{"cnf kid differs from the key", map[int64]any{1: coseKey(nil), 3: []byte{1, 2, 3}}, "",
			[]string{"cnf kid 010203 is not the thumbprint"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in, err := det.Marshal(map[int64]any{ClaimCnf: c.cnf})
			if err != nil {
				t.Fatal(err)
			}
			claims, err := DecodeClaims(in, ParseOptions{})
			if err != nil {
				t.Fatal(err)
			}
			j, err := json.Marshal(claims)
			if err != nil {
				t.Fatal(err)
			}
			var out struct {
				CNF struct {
					KID string         `json:"kid"`
					JWK map[string]any `json:"jwk"`
				} `json:"cnf"`
			}
			if err := json.Unmarshal(j, &out); err != nil {
				t.Fatal(err)
			}
			got, _ := out.CNF.JWK["kid"].(string)
			if got != c.jwkKID {
				t.Errorf("jwk kid = %q, want %q (%s)", got, c.jwkKID, j)
			}
			if kid, ok := c.cnf[3].([]byte); ok && out.CNF.KID != strings.ToLower(hexs(kid)) {
				t.Errorf("cnf kid = %q, want the wire kid %x", out.CNF.KID, kid)
			}
			var warned []string
			for _, p := range claims.ProfileProblems() {
				if strings.HasPrefix(p, "cnf ") {
					warned = append(warned, p)
				}
			}
			if len(warned) != len(c.warnings) {
				t.Fatalf("cnf warnings %q, want %d like %q", warned, len(c.warnings), c.warnings)
			}
			for i, w := range c.warnings {
				if !strings.HasPrefix(warned[i], w) {
					t.Errorf("warning %q, want prefix %q", warned[i], w)
				}
			}
			// Re-encoding keeps the wire form exactly.
			re, err := claims.MarshalCBOR()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(re, in) {
				t.Errorf("re-encoded\n%x\nwant\n%x", re, in)
			}
		})
	}
}
