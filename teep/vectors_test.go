package teep

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readHex(t testing.TB, rel string) []byte {
	t.Helper()
	s, err := os.ReadFile(filepath.Join("..", "testdata", rel))
	if err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(strings.Join(strings.Fields(string(s)), ""))
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return b
}

var vectorNames = []string{"query_request", "query_response", "update", "success", "error"}

func TestVectorsRoundTrip(t *testing.T) {
	for _, dir := range []struct {
		name string
		num  Numbering
	}{{"draft-26", Draft26}, {"pre-26-legacy", Legacy}} {
		for _, name := range vectorNames {
			t.Run(dir.name+"/"+name, func(t *testing.T) {
				data := readHex(t, "teep/"+dir.name+"/"+name+".hex")
				m, err := Decode(data, DecodeOptions{Numbering: dir.num})
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				got, err := Encode(m, EncodeOptions{Numbering: dir.num, PreserveOrder: true})
				if err != nil {
					t.Fatalf("Encode: %v", err)
				}
				if !bytes.Equal(got, data) {
					t.Fatalf("re-encoding differs\n got %x\nwant %x", got, data)
				}
			})
		}
	}
}
