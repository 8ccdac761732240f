package tamserver

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/teep-go/teep/internal/tam/teepcoap"
)

// Limits of the PSK file.
const (
	MaxPSKEntries     = 4096
	MaxPSKIdentityLen = 128 // RFC 7925 §4.2 recommends short identities
	MinPSKBytes       = 16  // RFC 7925 §4.2: at least 128 bits
	MaxPSKBytes       = 64
	MaxPSKFileBytes   = 1 << 20
)

func (t *TAM) listenCoAP() error {
	o := t.opts
	if o.CoAPAddr == "" && o.CoAPSAddr == "" && o.CoAPTCPAddr == "" && o.CoAPSTCPAddr == "" {
		return nil
	}
	h, err := teepcoap.NewHandler(teepcoap.Config{Engine: t.Engine, Path: o.Path, LegacyPath: o.LegacyPath,
		MaxBodyBytes: o.MaxBodyBytes, Logger: o.Logger, Registerer: t.registry})
	if err != nil {
		return err
	}
	cfg := teepcoap.ServerConfig{Handler: h, UDPAddr: o.CoAPAddr, DTLSAddr: o.CoAPSAddr, TCPAddr: o.CoAPTCPAddr,
		TLSAddr: o.CoAPSTCPAddr, RequireClientCert: o.RequireClientCert, Logger: o.Logger}
	if o.CoAPSAddr != "" || o.CoAPSTCPAddr != "" {
		if cfg.Certificate, err = t.coapCertificate(); err != nil {
			return err
		}
		if o.ClientCA != "" {
			pem, err := os.ReadFile(o.ClientCA)
			if err != nil {
				return fmt.Errorf("client CA: %w", err)
			}
			cfg.ClientCAs = x509.NewCertPool()
			if !cfg.ClientCAs.AppendCertsFromPEM(pem) {
				return fmt.Errorf("client CA %s: no PEM certificates", o.ClientCA)
			}
		}
	}
	if o.CoAPSAddr != "" {
		pskFile, explicit := o.CoAPPSKFile, true
		if pskFile == "" {
			pskFile, explicit = filepath.Join(o.DataDir, FileCoAPPSK), false
		}
		cfg.PSK, err = LoadPSKFile(pskFile)
		if err != nil && (explicit || !errors.Is(err, os.ErrNotExist)) {
			return err
		}
		if cfg.Certificate == nil && len(cfg.PSK) == 0 {
			return fmt.Errorf("coaps (DTLS) needs a certificate (--tls-cert or %s in the data directory) or PSKs (%s)", FileCoAPCert, FileCoAPPSK)
		}
	}
	if o.CoAPSTCPAddr != "" && cfg.Certificate == nil {
		return fmt.Errorf("coaps+tcp (TLS) needs a certificate (--tls-cert or %s in the data directory)", FileCoAPCert)
	}
	t.CoAP, err = teepcoap.Listen(cfg)
	return err
}

// coapCertificate loads the certificate of the secure CoAP listeners; nil
// when none is configured or present.
func (t *TAM) coapCertificate() (*tls.Certificate, error) {
	o := t.opts
	cert, key := o.CoAPCert, o.CoAPKey
	if cert == "" {
		cert, key = o.TLSCert, o.TLSKey
	}
	if cert == "" {
		cert, key = filepath.Join(o.DataDir, FileCoAPCert), filepath.Join(o.DataDir, FileCoAPKey)
		if _, err := os.Stat(cert); errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
	}
	c, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("CoAP certificate: %w", err)
	}
	return &c, nil
}

// LoadPSKFile reads DTLS PSKs: one "identity hex-key" pair a line; blank
// lines and lines starting with # are ignored. Identities are unique.
// The file should be 0600; it holds secrets.
func LoadPSKFile(path string) (map[string][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("PSK file: %w", err)
	}
	if len(b) > MaxPSKFileBytes {
		return nil, fmt.Errorf("PSK file %s: larger than %d bytes", path, MaxPSKFileBytes)
	}
	return ParsePSKs(b)
}

// ParsePSKs parses the PSK file format of LoadPSKFile.
func ParsePSKs(b []byte) (map[string][]byte, error) {
	out := map[string][]byte{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 4096)
	for line := 1; sc.Scan(); line++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Fields(l)
		if len(f) != 2 {
			return nil, fmt.Errorf("PSK file line %d: want \"identity hex-key\"", line)
		}
		id, hk := f[0], f[1]
		if len(id) > MaxPSKIdentityLen {
			return nil, fmt.Errorf("PSK file line %d: identity longer than %d bytes", line, MaxPSKIdentityLen)
		}
		k, err := hex.DecodeString(hk)
		if err != nil {
			return nil, fmt.Errorf("PSK file line %d: key: %w", line, err)
		}
		if len(k) < MinPSKBytes || len(k) > MaxPSKBytes {
			return nil, fmt.Errorf("PSK file line %d: key of %d bytes, want %d to %d", line, len(k), MinPSKBytes, MaxPSKBytes)
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("PSK file line %d: identity %q given twice", line, id)
		}
		if len(out) >= MaxPSKEntries {
			return nil, fmt.Errorf("PSK file: more than %d entries", MaxPSKEntries)
		}
		out[id] = k
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("PSK file: %w", err)
	}
	return out, nil
}
