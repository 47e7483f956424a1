package app

import (
	"net/http"

	"github.com/fleetward/fleetward/internal/api"
	"github.com/fleetward/fleetward/internal/identity"
)

// registerPKI serves the CA's revocation information, which relying
// parties (the broker of another node, devices, openssl) fetch without
// credentials: /pki/crl (DER, signed by the issuing intermediate) and the
// OCSP responder at /pki/ocsp (POST, or GET /pki/ocsp/<base64 request>).
func registerPKI(s *api.Server, ca *identity.CA) {
	s.Handle(api.Route{Method: "GET", Pattern: "/pki/crl", Handler: func(w http.ResponseWriter, r *http.Request) error {
		crl, err := ca.CRL(r.Context())
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/pkix-crl")
		w.Header().Set("Cache-Control", "max-age=300")
		_, err = w.Write(crl)
		return err
	}})
	ocsp := http.StripPrefix("/pki/ocsp", ca.OCSPHandler())
	serveOCSP := func(w http.ResponseWriter, r *http.Request) error {
		ocsp.ServeHTTP(w, r)
		return nil
	}
	s.Handle(api.Route{Method: "POST", Pattern: "/pki/ocsp", Handler: serveOCSP})
	s.Handle(api.Route{Method: "GET", Pattern: "/pki/ocsp/{request...}", Handler: serveOCSP})
}
