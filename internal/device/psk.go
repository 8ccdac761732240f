package device

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
)

// MaxPSKFileBytes bounds a PSK file.
const MaxPSKFileBytes = 4096

// LoadPSK reads a DTLS pre-shared key file: one line "IDENTITY HEX-KEY"
// (RFC 7925 §4.2), blank lines and lines starting with # ignored. It is the
// line format of the TAM's coap-psk file, so one line can be copied.
func LoadPSK(path string) (identity string, key []byte, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", nil, fmt.Errorf("TAM PSK file: %w", err)
	}
	if len(data) > MaxPSKFileBytes {
		return "", nil, fmt.Errorf("TAM PSK file %s: larger than %d bytes", path, MaxPSKFileBytes)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return "", nil, fmt.Errorf("TAM PSK file %s: want one line \"IDENTITY HEX-KEY\"", path)
		}
		if key, err = hex.DecodeString(f[1]); err != nil || len(key) < 16 {
			return "", nil, fmt.Errorf("TAM PSK file %s: the key must be at least 16 bytes of hex", path)
		}
		return f[0], key, nil
	}
	return "", nil, fmt.Errorf("TAM PSK file %s: no \"IDENTITY HEX-KEY\" line", path)
}
