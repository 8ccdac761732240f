package eat

// RequiredTEEPClaims are the claims draft-ietf-teep-protocol-26 §5 requires
// in every EAT of the TEEP profile (eat_nonce too when nonce freshness is
// used, which the verifier checks against its expectations).
var RequiredTEEPClaims = []int64{ClaimUEID, ClaimOEMID, ClaimHWModel, ClaimHWVersion, ClaimManifests, ClaimCnf}

// Has reports whether the claims-set carries the claim with this key.
func (c *Claims) Has(key int64) bool {
	if spec, ok := claimSpecs[key]; ok {
		return spec.has(c)
	}
	_, ok := c.Unknown[key]
	return ok
}

// ProfileProblems lists where c falls short of the TEEP EAT profile
// (draft-ietf-teep-protocol-26 §5): a foreign eat_profile, missing required
// claims, the array form of eat_nonce, a cnf naming no key, and every
// deviation that lenient decoding let through. An empty result means
// conformant as far as the claims-set alone can tell.
func (c *Claims) ProfileProblems() []string {
	var p []string
	switch {
	case c.ProfileOID != nil:
		p = append(p, "eat_profile is an OID, not the TEEP profile URI "+ProfileTEEP)
	case c.Profile != "" && c.Profile != ProfileTEEP:
		p = append(p, "eat_profile is "+c.Profile+", not "+ProfileTEEP)
	}
	for _, k := range RequiredTEEPClaims {
		if !c.Has(k) {
			p = append(p, "required claim "+claimLabel(k)+" is missing")
		}
	}
	if c.Nonces != nil {
		p = append(p, "eat_nonce is an array; the TEEP profile uses a single byte string")
	}
	if c.CNF != nil && c.CNF.Key == nil && c.CNF.KID == nil {
		p = append(p, "cnf names no key (neither COSE_Key nor kid)")
	}
	if c.CNF != nil {
		p = append(p, c.CNF.kidMismatches()...)
	}
	return append(p, c.Deviations...)
}
