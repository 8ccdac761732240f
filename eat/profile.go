package eat

// RequiredTEEPClaims are the claims draft-ietf-teep-protocol-26 §5 requires
// in every EAT of the TEEP profile (eat_nonce too when nonce freshness is
// used, which the verifier checks against its expectations).
var RequiredTEEPClaims = []int64{ClaimUEID, ClaimOEMID, ClaimHWModel, ClaimHWVersion, ClaimManifests, ClaimCnf}

// Has reports whether the claims-set carries the claim with this key.
func (c *Claims) Has(key int64) bool {
	switch key {
	case ClaimIss:
		return c.Issuer != ""
	case ClaimSub:
		return c.Subject != ""
	case ClaimAud:
		return c.Audience != ""
	case ClaimExp:
		return c.Expiry != nil
	case ClaimNbf:
		return c.NotBefore != nil
	case ClaimIat:
		return c.IssuedAt != nil
	case ClaimCti:
		return c.CWTID != nil
	case ClaimCnf:
		return c.CNF != nil
	case ClaimNonce:
		return c.Nonce != nil || c.Nonces != nil
	case ClaimUEID:
		return c.UEID != nil
	case ClaimSUEIDs:
		return c.SUEIDs != nil
	case ClaimOEMID:
		return c.OEMID != nil
	case ClaimHWModel:
		return c.HWModel != nil
	case ClaimHWVersion:
		return c.HWVersion != nil
	case ClaimUptime:
		return c.Uptime != nil
	case ClaimOEMBoot:
		return c.OEMBoot != nil
	case ClaimDbgStat:
		return c.DbgStat != nil
	case ClaimProfile:
		return c.Profile != "" || c.ProfileOID != nil
	case ClaimSubmods:
		return c.Submods != nil
	case ClaimBootCount:
		return c.BootCount != nil
	case ClaimBootSeed:
		return c.BootSeed != nil
	case ClaimSWName:
		return c.SWName != ""
	case ClaimSWVersion:
		return c.SWVersion != nil
	case ClaimManifests:
		return c.Manifests != nil
	case ClaimMeasurements:
		return c.Measurements != nil
	case ClaimIntUse:
		return c.IntUse != nil
	case ClaimEARStatus:
		return c.EARStatus != nil
	case ClaimEARPolicyID:
		return c.EARPolicyID != ""
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
	return append(p, c.Deviations...)
}
