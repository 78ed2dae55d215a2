package identity

import (
	"container/list"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// maxKeyBytes bounds a key server answer; a PEM P-256 public key is 178 bytes.
const maxKeyBytes = 4 << 10

// keyCache fetches the ALB's public keys by kid and keeps the most recently
// used ones. A kid names one key for good (the ALB rotates by minting new
// kids), so the lifetime only bounds how long a key AWS withdrew could still
// be trusted. Concurrent misses for one kid share one fetch, so a burst of
// sign-ins after a rotation costs the key server one request.
type keyCache struct {
	base    string // keys URL without a trailing slash
	client  *http.Client
	timeout time.Duration
	ttl     time.Duration
	size    int
	now     func() time.Time

	mu       sync.Mutex
	lru      *list.List // of *cachedKey, most recently used first
	byKid    map[string]*list.Element
	inflight map[string]*fetchCall

	// waiting, when set (tests), is called by a caller that found a fetch
	// for its kid under way and is about to wait for it.
	waiting func(kid string)
}

type cachedKey struct {
	kid     string
	key     *ecdsa.PublicKey
	expires time.Time
}

type fetchCall struct {
	done chan struct{}
	key  *ecdsa.PublicKey
	err  error
}

func newKeyCache(base string, client *http.Client, timeout, ttl time.Duration, size int, now func() time.Time) *keyCache {
	return &keyCache{
		base: base, client: client, timeout: timeout, ttl: ttl, size: size, now: now,
		lru:      list.New(),
		byKid:    make(map[string]*list.Element),
		inflight: make(map[string]*fetchCall),
	}
}

// get returns the key for kid, from the cache or the key server.
func (c *keyCache) get(ctx context.Context, kid string) (*ecdsa.PublicKey, error) {
	c.mu.Lock()
	if el, ok := c.byKid[kid]; ok {
		e := el.Value.(*cachedKey)
		if c.now().Before(e.expires) {
			c.lru.MoveToFront(el)
			c.mu.Unlock()
			return e.key, nil
		}
		c.lru.Remove(el)
		delete(c.byKid, kid)
	}
	if call, ok := c.inflight[kid]; ok {
		hook := c.waiting
		c.mu.Unlock()
		if hook != nil {
			hook(kid)
		}
		select {
		case <-call.done:
			return call.key, call.err
		case <-ctx.Done():
			return nil, &Error{Reason: ReasonKeysUnavailable, detail: "wait for key", err: ctx.Err()}
		}
	}
	call := &fetchCall{done: make(chan struct{})}
	c.inflight[kid] = call
	c.mu.Unlock()

	call.key, call.err = c.fetch(ctx, kid)

	c.mu.Lock()
	delete(c.inflight, kid)
	if call.err == nil {
		c.add(kid, call.key)
	}
	c.mu.Unlock()
	close(call.done)
	return call.key, call.err
}

// add stores a key, evicting the least recently used one when full. c.mu
// is held.
func (c *keyCache) add(kid string, key *ecdsa.PublicKey) {
	for c.lru.Len() >= c.size {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.byKid, old.Value.(*cachedKey).kid)
	}
	c.byKid[kid] = c.lru.PushFront(&cachedKey{kid: kid, key: key, expires: c.now().Add(c.ttl)})
}

// len is the number of cached keys.
func (c *keyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// fetch asks the key server for kid's PEM public key. The fetch is detached
// from the caller's cancellation (others may be waiting for it) but bounded
// by the timeout.
func (c *keyCache) fetch(ctx context.Context, kid string) (*ecdsa.PublicKey, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/"+url.PathEscape(kid), nil)
	if err != nil {
		return nil, &Error{Reason: ReasonKeysUnavailable, detail: "key request", err: err}
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, &Error{Reason: ReasonKeysUnavailable, detail: "fetch key", err: err}
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxKeyBytes))
		resp.Body.Close()
	}()
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusForbidden:
		// The regional endpoint is an S3 bucket: a missing object may
		// come back as 403 as well as 404.
		return nil, fail(ReasonKidUnknown, fmt.Sprintf("key server answered %d", resp.StatusCode))
	default:
		return nil, fail(ReasonKeysUnavailable, fmt.Sprintf("key server answered %d", resp.StatusCode))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeyBytes+1))
	if err != nil {
		return nil, &Error{Reason: ReasonKeysUnavailable, detail: "read key", err: err}
	}
	if len(body) > maxKeyBytes {
		return nil, fail(ReasonKeysUnavailable, "key server answer too large")
	}
	key, err := parseKey(body)
	if err != nil {
		return nil, &Error{Reason: ReasonKeysUnavailable, detail: "key server answer", err: err}
	}
	return key, nil
}

// parseKey reads a PEM SubjectPublicKeyInfo holding a P-256 key, which is
// what the ALB's key endpoint serves.
func parseKey(b []byte) (*ecdsa.PublicKey, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("not a PEM public key")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	key, ok := pub.(*ecdsa.PublicKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("not a P-256 public key")
	}
	return key, nil
}
