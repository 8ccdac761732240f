package console

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/teep-go/teep/internal/tam/admin"
)

// maxTokenLen bounds the sign-in field (API secrets and admin tokens are
// far shorter).
const maxTokenLen = 512

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if c.sessions.get(r) != nil {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
		return
	}
	c.renderLogin(w, r, http.StatusOK, "")
}

func (c *Console) renderLogin(w http.ResponseWriter, r *http.Request, code int, msg string) {
	v := &view{Title: "Sign in", Error: msg, Data: safeNext(r.FormValue("next"))}
	if err := c.renderBare(w, code, "login", v); err != nil {
		c.log.Error("console sign-in page", "err", err)
	}
}

// sameOrigin refuses a cross-site sign-in (login CSRF: a form on another
// site signing the victim in under the attacker's token). No session
// exists yet, so no CSRF token can be checked; the browser's Fetch
// Metadata and Origin headers say where the form came from.
func sameOrigin(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	return true
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		c.renderError(w, r, nil, http.StatusForbidden, "cross-site sign-in refused")
		return
	}
	if err := parseForm(w, r, MaxFormBytes); err != nil {
		c.renderError(w, r, nil, http.StatusBadRequest, err.Error())
		return
	}
	secret := strings.TrimSpace(r.PostFormValue("token"))
	if secret == "" || len(secret) > maxTokenLen {
		c.renderLogin(w, r, http.StatusUnauthorized, "give an API token or the admin token")
		return
	}
	var who admin.Whoami
	if err := c.call(r, secret, "GET", admin.Prefix+"whoami", "", nil, &who); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
			c.log.Warn("console sign-in with a wrong token", "peer", r.RemoteAddr)
			c.renderLogin(w, r, http.StatusUnauthorized, "wrong, revoked or expired token")
			return
		}
		c.renderError(w, r, nil, statusOf(err), detailOf(err))
		return
	}
	id, _, err := c.sessions.create(secret)
	if err != nil {
		c.renderError(w, r, nil, http.StatusInternalServerError, err.Error())
		return
	}
	c.log.Info("console sign-in", "peer", r.RemoteAddr, "token_id", who.TokenID, "tenant", who.Tenant, "role", who.Role)
	http.SetCookie(w, sessionCookie(r, id, 0))
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

// safeNext keeps a post-sign-in redirect inside the console.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") ||
		strings.HasPrefix(next, Prefix+"login") {
		return Prefix
	}
	return next
}

func (c *Console) logout(q *req) error {
	c.sessions.drop(q.s)
	http.SetCookie(q.w, sessionCookie(q.r, "", -1))
	c.log.Info("console sign-out", "peer", q.r.RemoteAddr, "token_id", q.who.TokenID)
	http.Redirect(q.w, q.r, Prefix+"login", http.StatusSeeOther)
	return nil
}
