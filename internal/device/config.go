package device

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/teep-go/teep/internal/agent"
	"github.com/teep-go/teep/internal/keyfile"
	"github.com/teep-go/teep/internal/tee/softtee"
)

// Files of a state directory (package comment).
const (
	FileConfig            = "device.json"
	FileSocket            = "broker.sock"
	DirTEE                = "tee"
	FileAgentKeyPEM       = "agent-key.pem"
	FileAttestationKeyPEM = "attestation-key.pem"
	// DefaultTEE is the TEE run when neither the options nor the state
	// directory name one.
	DefaultTEE = "default"
)

// MaxConfigBytes bounds device.json.
const MaxConfigBytes = 1 << 20

// Config is the rich-OS side configuration kept in device.json. Trust
// anchors and identity are not here: they are sealed in each TEE.
type Config struct {
	// TAMs are the TAMs the device works with, the default first.
	TAMs            []TAMConfig `json:"tams"`
	TEEs            []string    `json:"tees"`
	LegacyNumbering bool        `json:"legacy_numbering,omitempty"`
	Verifier        string      `json:"verifier,omitempty"`

	// The single-TAM form of device.json: read, and migrated into TAMs
	// (named DefaultTAM) on load; never written.
	LegacyTAM    string `json:"tam,omitempty"`
	LegacyTAMCA  string `json:"tam_ca,omitempty"`
	LegacyTAMPSK string `json:"tam_psk,omitempty"`
}

// TAMConfig is one TAM of device.json. The TAM named DefaultTAM uses the
// TEEs' unscoped trust anchors (the single-TAM set-up); any other uses the
// trust scope of its name, so it installs only with its own signers and
// never touches another TAM's components.
type TAMConfig struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	CA   string `json:"ca,omitempty"`  // PEM CA file for its TLS/DTLS certificate (absolute)
	PSK  string `json:"psk,omitempty"` // "IDENTITY HEX-KEY" file for coaps:// (absolute)
}

// DefaultTAM is the name of the TAM given without a name (--tam URL).
const DefaultTAM = "default"

// MaxTAMs bounds the TAMs of one device (the Agent's trust scopes).
const MaxTAMs = agent.MaxScopes

// TAM returns the TAM of that name, or nil.
func (c *Config) TAM(name string) *TAMConfig {
	for i := range c.TAMs {
		if c.TAMs[i].Name == name {
			return &c.TAMs[i]
		}
	}
	return nil
}

// TAMByURL returns the TAM with that URL, or nil.
func (c *Config) TAMByURL(url string) *TAMConfig {
	for i := range c.TAMs {
		if c.TAMs[i].URL == url {
			return &c.TAMs[i]
		}
	}
	return nil
}

// migrate moves the single-TAM fields into TAMs and checks the list.
func (c *Config) migrate() error {
	if c.LegacyTAM != "" {
		if c.TAM(DefaultTAM) != nil {
			return fmt.Errorf("both \"tam\" and a TAM named %q", DefaultTAM)
		}
		c.TAMs = append([]TAMConfig{{Name: DefaultTAM, URL: c.LegacyTAM, CA: c.LegacyTAMCA, PSK: c.LegacyTAMPSK}}, c.TAMs...)
	} else if c.LegacyTAMCA != "" || c.LegacyTAMPSK != "" {
		return errors.New("\"tam_ca\" or \"tam_psk\" without \"tam\"")
	}
	c.LegacyTAM, c.LegacyTAMCA, c.LegacyTAMPSK = "", "", ""
	if len(c.TAMs) > MaxTAMs {
		return fmt.Errorf("more than %d TAMs", MaxTAMs)
	}
	seen := map[string]bool{}
	for _, t := range c.TAMs {
		if !agent.ValidScope.MatchString(t.Name) {
			return fmt.Errorf("TAM name %q: want lower-case letters, digits, '.', '_' or '-' (up to 63)", t.Name)
		}
		if seen[t.Name] || seen["url "+t.URL] {
			return fmt.Errorf("TAM %s: name or URL given twice", t.Name)
		}
		seen[t.Name], seen["url "+t.URL] = true, true
	}
	return nil
}

// DefaultStateDir is the state directory when none is given:
// $TEEP_DEVICE_STATE, else the XDG state directory, else ./teep-device.
func DefaultStateDir(getenv func(string) string) string {
	if d := getenv("TEEP_DEVICE_STATE"); d != "" {
		return d
	}
	if d := getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "teep", "device")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "state", "teep", "device")
	}
	return "teep-device"
}

// LoadConfig reads device.json of a state directory; an absent file is an
// empty configuration. Unknown fields and trailing data are errors.
func LoadConfig(state string) (*Config, error) {
	path := filepath.Join(state, FileConfig)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Config{}, nil
	}
	if err != nil {
		return nil, err
	}
	return decodeConfig(path, data)
}

func decodeConfig(path string, data []byte) (*Config, error) {
	if len(data) > MaxConfigBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, MaxConfigBytes)
	}
	var c Config
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: data after the JSON object", path)
	}
	if err := c.migrate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

// SaveConfig writes device.json atomically (0600).
func SaveConfig(state string, c *Config) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return keyfile.WriteAtomic(filepath.Join(state, FileConfig), append(data, '\n'), 0o600)
}

// TEENames lists the TEEs of a state directory: device.json's list (its
// order: the first is the default TEE), then any other TEE directory.
func TEENames(state string, c *Config) []string {
	out := append([]string(nil), c.TEEs...)
	entries, _ := os.ReadDir(filepath.Join(state, DirTEE))
	for _, en := range entries {
		if en.IsDir() && softtee.ValidName.MatchString(en.Name()) {
			out = append(out, en.Name())
		}
	}
	return dedupe(out)
}

// FirstTEE returns name, or when it is empty the first TEE of the state
// directory.
func FirstTEE(state, name string) (string, error) {
	if name != "" {
		return name, nil
	}
	cfg, err := LoadConfig(state)
	if err != nil {
		return "", err
	}
	names := TEENames(state, cfg)
	if len(names) == 0 {
		return "", fmt.Errorf("%s holds no TEEs (run `teep device run` first)", state)
	}
	return names[0], nil
}

// ParseUUID parses a UUID, with or without its dashes.
func ParseUUID(s string) (*[16]byte, error) {
	h := strings.ReplaceAll(s, "-", "")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 16 || (strings.Contains(s, "-") && len(s) != 36) {
		return nil, fmt.Errorf("%q is not a UUID (want 8-4-4-4-12 hex digits)", s)
	}
	var u [16]byte
	copy(u[:], b)
	return &u, nil
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
