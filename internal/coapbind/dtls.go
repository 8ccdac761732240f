package coapbind

import (
	"crypto/tls"
	"crypto/x509"

	piondtls "github.com/pion/dtls/v3"
)

// DTLSClient is what a client needs to reach a coaps:// TAM under the RFC
// 7925 profile: a PSK (TLS_PSK_WITH_AES_128_CCM_8, RFC 7925 §4.2) or the
// server's certificate checked against RootCAs
// (TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, §4.4), each with its GCM suite too,
// as peers outside constrained devices commonly offer GCM only.
type DTLSClient struct {
	ServerName  string
	RootCAs     *x509.CertPool   // nil: the system roots
	Certificate *tls.Certificate // optional client certificate
	PSK         []byte           // when set, the PSK suites only
	PSKIdentity string
}

// Options are the pion/dtls client options for c. Extended master secret
// is required (RFC 7627), as the TAM's listener requires it.
func (c DTLSClient) Options() []piondtls.ClientOption {
	opts := []piondtls.ClientOption{piondtls.WithExtendedMasterSecret(piondtls.RequireExtendedMasterSecret)}
	if len(c.PSK) > 0 {
		psk := c.PSK
		return append(opts,
			piondtls.WithPSK(func([]byte) ([]byte, error) { return psk, nil }),
			piondtls.WithPSKIdentityHint([]byte(c.PSKIdentity)),
			piondtls.WithCipherSuites(piondtls.TLS_PSK_WITH_AES_128_CCM_8, piondtls.TLS_PSK_WITH_AES_128_GCM_SHA256))
	}
	opts = append(opts, piondtls.WithServerName(c.ServerName),
		piondtls.WithCipherSuites(piondtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, piondtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256))
	if c.RootCAs != nil {
		opts = append(opts, piondtls.WithRootCAs(c.RootCAs))
	}
	if c.Certificate != nil {
		opts = append(opts, piondtls.WithCertificates(*c.Certificate))
	}
	return opts
}
