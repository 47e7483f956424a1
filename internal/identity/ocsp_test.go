package identity

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"golang.org/x/crypto/ocsp"

	"github.com/fleetward/fleetward/internal/store/storetest"
)

// askOCSP posts a request for cert to the handler and parses the answer.
func askOCSP(t *testing.T, srv *httptest.Server, cert, issuer *x509.Certificate, get bool) *ocsp.Response {
	t.Helper()
	req, err := ocsp.CreateRequest(cert, issuer, &ocsp.RequestOptions{Hash: crypto.SHA256})
	if err != nil {
		t.Fatal(err)
	}
	var resp *http.Response
	if get {
		resp, err = http.Get(srv.URL + "/pki/ocsp/" + url.PathEscape(base64.StdEncoding.EncodeToString(req)))
	} else {
		resp, err = http.Post(srv.URL+"/pki/ocsp", "application/ocsp-request", bytes.NewReader(req))
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/ocsp-response" {
		t.Fatalf("OCSP HTTP %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	r, err := ocsp.ParseResponseForCert(body, cert, issuer)
	if err != nil {
		t.Fatalf("parse OCSP response: %v", err)
	}
	return r
}

func ocspServer(ca testCA) *httptest.Server {
	mux := http.NewServeMux()
	mux.Handle("/pki/ocsp", ca.OCSPHandler())
	mux.Handle("/pki/ocsp/", ca.OCSPHandler())
	return httptest.NewServer(mux)
}

func TestOCSPAnswersGoodRevokedAndUnknown(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		ctx := context.Background()
		ca := initCA(t, e.DB)
		srv := ocspServer(ca)
		defer srv.Close()
		cert := issueDevice(t, ca, "dev-1", "")
		chain, _ := ca.Chain(ctx)
		issuer := chain[0]

		for _, get := range []bool{false, true} {
			if r := askOCSP(t, srv, cert, issuer, get); r.Status != ocsp.Good {
				t.Errorf("get=%t: status %d, want good", get, r.Status)
			}
		}
		if err := ca.Revoke(ctx, SerialString(cert.SerialNumber), ReasonKeyCompromise); err != nil {
			t.Fatal(err)
		}
		r := askOCSP(t, srv, cert, issuer, false)
		if r.Status != ocsp.Revoked || r.RevocationReason != ocsp.KeyCompromise || r.RevokedAt.IsZero() {
			t.Errorf("after revocation: status %d reason %d", r.Status, r.RevocationReason)
		}
		// A certificate this CA never issued, under its issuer's name.
		stranger := *cert
		stranger.SerialNumber = new(big.Int).Add(cert.SerialNumber, big.NewInt(1))
		if r := askOCSP(t, srv, &stranger, issuer, false); r.Status != ocsp.Unknown {
			t.Errorf("unknown serial: status %d", r.Status)
		}
		// Rotation: the old intermediate still answers for its certificates.
		if _, err := ca.RotateIntermediate(ctx, nil); err != nil {
			t.Fatal(err)
		}
		old := issueDevice(t, ca, "dev-2", "")
		chain, _ = ca.Chain(ctx)
		if r := askOCSP(t, srv, old, chain[0], false); r.Status != ocsp.Good {
			t.Errorf("new intermediate's certificate: %d", r.Status)
		}
		if r := askOCSP(t, srv, cert, issuer, true); r.Status != ocsp.Revoked {
			t.Errorf("old intermediate's revoked certificate: %d", r.Status)
		}
	})
}

func TestOCSPAnswersForAnEd25519CAThroughADelegatedResponder(t *testing.T) {
	ctx := context.Background()
	ca := newTestCA(t, storetest.SQLite(t).DB, Options{KeyAlgorithm: Ed25519})
	if err := ca.Init(ctx, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	srv := ocspServer(ca)
	defer srv.Close()
	cert := issueDevice(t, ca, "dev-ed", "")
	chain, _ := ca.Chain(ctx)
	r := askOCSP(t, srv, cert, chain[0], false)
	if r.Status != ocsp.Good || r.Certificate == nil {
		t.Fatalf("status %d, responder certificate %v", r.Status, r.Certificate != nil)
	}
	if r.Certificate.CheckSignatureFrom(chain[0]) != nil || r.Certificate.ExtKeyUsage[0] != x509.ExtKeyUsageOCSPSigning {
		t.Error("responder certificate is not an OCSP signer issued by the intermediate")
	}
}

func TestOCSPRefusesMalformedRequests(t *testing.T) {
	ca := initCA(t, storetest.SQLite(t).DB)
	srv := ocspServer(ca)
	defer srv.Close()
	other := initCA(t, storetest.SQLite(t).DB)
	foreign := issueDevice(t, other, "x", "")
	otherChain, _ := other.Chain(context.Background())
	foreignReq, _ := ocsp.CreateRequest(foreign, otherChain[0], nil)

	tests := []struct {
		name string
		do   func() (*http.Response, error)
		want []byte
	}{
		{"an empty POST", func() (*http.Response, error) {
			return http.Post(srv.URL+"/pki/ocsp", "application/ocsp-request", nil)
		}, ocsp.MalformedRequestErrorResponse},
		{"garbage bytes", func() (*http.Response, error) {
			return http.Post(srv.URL+"/pki/ocsp", "application/ocsp-request", bytes.NewReader([]byte("\x30\x03garbage")))
		}, ocsp.MalformedRequestErrorResponse},
		{"an oversize body", func() (*http.Response, error) {
			return http.Post(srv.URL+"/pki/ocsp", "application/ocsp-request", bytes.NewReader(make([]byte, 1<<20)))
		}, ocsp.MalformedRequestErrorResponse},
		{"a GET that is not base64", func() (*http.Response, error) {
			return http.Get(srv.URL + "/pki/ocsp/not*base64!~")
		}, ocsp.MalformedRequestErrorResponse},
		{"a request about another CA", func() (*http.Response, error) {
			return http.Post(srv.URL+"/pki/ocsp", "application/ocsp-request", bytes.NewReader(foreignReq))
		}, ocsp.UnauthorizedErrorResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name+" gets an OCSP error response", func(t *testing.T) {
			resp, err := tt.do()
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || !bytes.Equal(body, tt.want) {
				t.Errorf("HTTP %d body %x, want %x", resp.StatusCode, body, tt.want)
			}
		})
	}
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/pki/ocsp", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT: %v %v", resp, err)
	}
}

func FuzzOCSPRequest(f *testing.F) {
	ca := initCA(f, storetest.SQLite(f).DB)
	cert := issueDevice(f, ca, "dev-1", "")
	chain, _ := ca.Chain(context.Background())
	good, _ := ocsp.CreateRequest(cert, chain[0], nil)
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte("\x30\x80"))
	h := ca.OCSPHandler()
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, r := range []*http.Request{
			httptest.NewRequest(http.MethodPost, "/pki/ocsp", bytes.NewReader(body)),
			httptest.NewRequest(http.MethodGet, "/pki/ocsp/"+url.PathEscape(base64.StdEncoding.EncodeToString(body)), nil),
		} {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				t.Fatalf("HTTP %d", w.Code)
			}
			if _, err := ocsp.ParseResponse(w.Body.Bytes(), nil); err != nil {
				if _, isErr := err.(ocsp.ResponseError); !isErr {
					// A signed answer to a request that parsed; check it.
					if _, err := ocsp.ParseResponse(w.Body.Bytes(), chain[0]); err != nil {
						t.Fatalf("unparseable response: %v", err)
					}
				}
			}
		}
	})
}
