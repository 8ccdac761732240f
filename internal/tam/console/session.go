package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"
)

// CookieName is the session cookie. The __Host- prefix would need Path=/,
// and the cookie is meant for the console's paths only.
const CookieName = "teep_console"

// session is one signed-in browser. The token secret stays in server
// memory only, so each API call presents it again and a revoked or expired
// token ends the session at its next request.
type session struct {
	key      [32]byte // SHA-256 of the cookie's id: the map key
	secret   string
	csrf     string
	created  time.Time
	lastUsed time.Time
	// flash is a message for the next page; secretOnce a created token's
	// secret, shown on the next page only.
	flash, flashErr string
	secretOnce      string
}

// sessions is the in-memory store. Ids are 32 random bytes; the map is
// keyed by their SHA-256, so a lookup's timing says nothing useful about
// the ids stored.
type sessions struct {
	mu    sync.Mutex
	m     map[[32]byte]*session
	idle  time.Duration
	life  time.Duration
	max   int
	clock func() time.Time
}

func newID() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func (s *sessions) expired(x *session, now time.Time) bool {
	return now.Sub(x.lastUsed) >= s.idle || now.Sub(x.created) >= s.life
}

// create stores a new session for secret and returns its cookie id.
func (s *sessions) create(secret string) (string, *session, error) {
	id, err := newID()
	if err != nil {
		return "", nil, err
	}
	csrf, err := newID()
	if err != nil {
		return "", nil, err
	}
	now := s.clock()
	x := &session{key: sha256.Sum256([]byte(id)), secret: secret, csrf: csrf, created: now, lastUsed: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= s.max {
		s.sweepLocked(now)
	}
	if len(s.m) >= s.max {
		// Full of live sessions: drop the least recently used one rather
		// than refuse every new sign-in.
		var old *session
		for _, y := range s.m {
			if old == nil || y.lastUsed.Before(old.lastUsed) {
				old = y
			}
		}
		delete(s.m, old.key)
	}
	s.m[x.key] = x
	return id, x, nil
}

func (s *sessions) sweepLocked(now time.Time) {
	for k, x := range s.m {
		if s.expired(x, now) {
			delete(s.m, k)
		}
	}
}

// get returns the live session of the request's cookie, touching it.
func (s *sessions) get(r *http.Request) *session {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" || len(c.Value) > 64 {
		return nil
	}
	key := sha256.Sum256([]byte(c.Value))
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.m[key]
	if x == nil {
		return nil
	}
	if s.expired(x, now) {
		delete(s.m, key)
		return nil
	}
	x.lastUsed = now
	return x
}

func (s *sessions) drop(x *session) {
	s.mu.Lock()
	delete(s.m, x.key)
	s.mu.Unlock()
}

func (s *sessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// takeFlash returns and clears the session's one-time messages.
func (s *sessions) takeFlash(x *session) (msg, errMsg, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg, errMsg, secret = x.flash, x.flashErr, x.secretOnce
	x.flash, x.flashErr, x.secretOnce = "", "", ""
	return
}

func (s *sessions) setFlash(x *session, msg, errMsg, secret string) {
	s.mu.Lock()
	x.flash, x.flashErr, x.secretOnce = msg, errMsg, secret
	s.mu.Unlock()
}

// checkCSRF compares the form's token with the session's in constant time.
func checkCSRF(x *session, got string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(x.csrf)) == 1
}

func sessionCookie(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: CookieName, Value: value, Path: "/console", MaxAge: maxAge,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode}
}
