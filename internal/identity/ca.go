package identity

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/fleetward/fleetward/internal/apperr"
	"github.com/fleetward/fleetward/internal/store"
)

// InitOptions configure Init.
type InitOptions struct {
	// OfflineRootKeyFile, when set, is where the root private key is
	// written (PEM, mode 0600, the file must not exist); the database then
	// holds only the root certificate, and RotateIntermediate needs the key
	// back.
	OfflineRootKeyFile string
	// KeyAlgorithm of the root and intermediate keys, overriding
	// Options.KeyAlgorithm: "ecdsa-p256", "ed25519" or "rsa-3072".
	KeyAlgorithm string
}

// caConfig is the identity_ca row.
type caConfig struct {
	KeyAlgorithm string
	Organization string
	RootOffline  bool
}

// caCert is one row of identity_ca_certs: the root or an intermediate.
type caCert struct {
	Serial    string
	Kind      string // "root" or "intermediate"
	Active    bool
	Cert      *x509.Certificate
	SealedKey string // "" for an offline root
	CRLNumber int64
}

const (
	kindRoot         = "root"
	kindIntermediate = "intermediate"
)

// keyContext binds a sealed CA key to its certificate, so a sealed value
// cannot be moved to another row.
func keyContext(serial string) string { return "identity/ca-key/" + serial }

// Init creates the root and the first issuing intermediate if the CA has
// none. It is idempotent: calling it again with the same options (key
// algorithm, organization, offline root or not) does nothing. Returns
// Conflict if the CA exists with different options or the offline root key
// file already exists, and Invalid for an unknown key algorithm.
func (ca *CA) Init(ctx context.Context, o InitOptions) error {
	alg := ca.opts.KeyAlgorithm
	if o.KeyAlgorithm != "" {
		alg = o.KeyAlgorithm
	}
	want := caConfig{KeyAlgorithm: alg, Organization: ca.opts.Organization, RootOffline: o.OfflineRootKeyFile != ""}
	if have, ok, err := readConfig(ctx, ca.db, ""); err != nil {
		return err
	} else if ok {
		return compareConfig(have, want)
	}
	now := ca.now().UTC()
	rootKey, err := generateKey(want.KeyAlgorithm)
	if err != nil {
		return err
	}
	rootCert, err := ca.makeRoot(rootKey, now)
	if err != nil {
		return err
	}
	intKey, err := generateKey(want.KeyAlgorithm)
	if err != nil {
		return err
	}
	intCert, err := ca.makeIntermediate(rootCert, rootKey, intKey, now)
	if err != nil {
		return err
	}
	if want.RootOffline {
		if err := writeKeyFile(o.OfflineRootKeyFile, rootKey); err != nil {
			return err
		}
	}
	err = ca.db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO identity_ca (id, key_algorithm, organization, root_offline, created_at) VALUES (1, ?, ?, ?, ?)`,
			want.KeyAlgorithm, want.Organization, boolInt(want.RootOffline), store.Nanos(now)); err != nil {
			return err
		}
		var keep crypto.Signer = rootKey
		if want.RootOffline {
			keep = nil
		}
		if err := ca.insertCA(ctx, tx, rootCert, kindRoot, keep, false, now); err != nil {
			return err
		}
		if err := ca.insertCA(ctx, tx, intCert, kindIntermediate, intKey, true, now); err != nil {
			return err
		}
		return ca.record(ctx, tx, EventCAInitialized, SerialString(rootCert.SerialNumber), map[string]any{
			"root": SerialString(rootCert.SerialNumber), "intermediate": SerialString(intCert.SerialNumber),
			"key_algorithm": want.KeyAlgorithm, "root_offline": want.RootOffline,
		})
	})
	if err != nil {
		if want.RootOffline {
			_ = os.Remove(o.OfflineRootKeyFile)
		}
		if store.IsUniqueViolation(err) {
			// Another process initialized the CA first.
			have, ok, rerr := readConfig(ctx, ca.db, "")
			if rerr == nil && ok {
				return compareConfig(have, want)
			}
		}
		return fmt.Errorf("initialize certificate authority: %w", err)
	}
	ca.log.Info("certificate authority initialized", "root", SerialString(rootCert.SerialNumber),
		"intermediate", SerialString(intCert.SerialNumber), "key_algorithm", want.KeyAlgorithm, "root_offline", want.RootOffline)
	return nil
}

func compareConfig(have, want caConfig) error {
	if have != want {
		return apperr.Errorf(apperr.Conflict, "the certificate authority is already initialized with key algorithm %s, organization %q, offline root %t; asked for %s, %q, %t",
			have.KeyAlgorithm, have.Organization, have.RootOffline, want.KeyAlgorithm, want.Organization, want.RootOffline)
	}
	return nil
}

// RotateIntermediate makes a new issuing intermediate under the same root
// and issues from it from now on. Older intermediates stay in Chain, so
// certificates they issued keep verifying and devices need not re-enrol.
// rootKeyPEM is the offline root key; nil uses the stored one. Returns
// Invalid naming "root_key" when the root key is offline and not given, or
// does not match the root; Conflict if the CA is not initialized.
func (ca *CA) RotateIntermediate(ctx context.Context, rootKeyPEM []byte) (*x509.Certificate, error) {
	cas, err := loadCAs(ctx, ca.db)
	if err != nil {
		return nil, err
	}
	root, err := findRoot(cas)
	if err != nil {
		return nil, err
	}
	var rootKey crypto.Signer
	switch {
	case rootKeyPEM != nil:
		if rootKey, err = ParseKeyPEM(rootKeyPEM); err != nil {
			return nil, err
		}
		if !samePublicKey(rootKey.Public(), root.Cert.PublicKey) {
			return nil, apperr.InvalidField("root_key", "does not match the root certificate %s", root.Serial)
		}
	case root.SealedKey == "":
		return nil, apperr.InvalidField("root_key", "the root key is kept offline; supply it to rotate the intermediate")
	default:
		if rootKey, err = ca.signerFor(root); err != nil {
			return nil, err
		}
	}
	have, _, err := readConfig(ctx, ca.db, "")
	if err != nil {
		return nil, err
	}
	now := ca.now().UTC()
	key, err := generateKey(have.KeyAlgorithm)
	if err != nil {
		return nil, err
	}
	cert, err := ca.makeIntermediate(root.Cert, rootKey, key, now)
	if err != nil {
		return nil, err
	}
	err = ca.db.InTx(ctx, func(tx *store.Tx) error {
		// Lock the CA so two rotations do not both stay active.
		if _, _, err := readConfig(ctx, tx, tx.DB().ForUpdate()); err != nil {
			return err
		}
		var previous string
		err := tx.QueryRow(ctx, `SELECT serial FROM identity_ca_certs WHERE kind = ? AND active = 1`, kindIntermediate).Scan(&previous)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE identity_ca_certs SET active = 0 WHERE kind = ?`, kindIntermediate); err != nil {
			return err
		}
		if err := ca.insertCA(ctx, tx, cert, kindIntermediate, key, true, now); err != nil {
			return err
		}
		return ca.record(ctx, tx, EventIntermediateRotated, SerialString(cert.SerialNumber), map[string]any{
			"intermediate": SerialString(cert.SerialNumber), "previous": previous,
		})
	})
	if err != nil {
		if apperr.As(err) != nil {
			return nil, err
		}
		return nil, fmt.Errorf("rotate intermediate: %w", err)
	}
	ca.log.Info("intermediate rotated", "intermediate", SerialString(cert.SerialNumber))
	return cert, nil
}

// Chain returns the issuing intermediates that have not expired, the
// active one first, followed by the root: the bundle a verifier needs for
// any certificate the CA issued. Returns Conflict if not initialized.
func (ca *CA) Chain(ctx context.Context) ([]*x509.Certificate, error) {
	cas, err := loadCAs(ctx, ca.db)
	if err != nil {
		return nil, err
	}
	root, err := findRoot(cas)
	if err != nil {
		return nil, err
	}
	now := ca.now()
	var out []*x509.Certificate
	for _, c := range cas { // active first: loadCAs orders by it
		if c.Kind == kindIntermediate && now.Before(c.Cert.NotAfter) {
			out = append(out, c.Cert)
		}
	}
	return append(out, root.Cert), nil
}

// Roots returns a pool holding the root certificate, for verifying device
// and server certificates (tls.Config.ClientCAs, RootCAs).
func (ca *CA) Roots(ctx context.Context) (*x509.CertPool, error) {
	cas, err := loadCAs(ctx, ca.db)
	if err != nil {
		return nil, err
	}
	root, err := findRoot(cas)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(root.Cert)
	return pool, nil
}

func (ca *CA) makeRoot(key crypto.Signer, now time.Time) (*x509.Certificate, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: ca.opts.Organization + " root CA", Organization: []string{ca.opts.Organization}},
		NotBefore:             now.Add(-clockSkewAllowance),
		NotAfter:              now.Add(RootLifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            1,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	return createCert(tmpl, tmpl, key.Public(), key)
}

func (ca *CA) makeIntermediate(root *x509.Certificate, rootKey, key crypto.Signer, now time.Time) (*x509.Certificate, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(IntermediateLifetime)
	if notAfter.After(root.NotAfter) {
		notAfter = root.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   ca.opts.Organization + " issuing CA " + now.Format("2006-01-02") + " " + SerialString(serial)[:8],
			Organization: []string{ca.opts.Organization},
		},
		NotBefore:             now.Add(-clockSkewAllowance),
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		// DigitalSignature: the intermediate signs OCSP responses itself.
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	return createCert(tmpl, root, key.Public(), rootKey)
}

func createCert(tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, fmt.Errorf("sign certificate %s: %w", tmpl.Subject.CommonName, err)
	}
	return x509.ParseCertificate(der)
}

// insertCA stores a CA certificate and its sealed key (none when key is nil).
func (ca *CA) insertCA(ctx context.Context, tx *store.Tx, cert *x509.Certificate, kind string, key crypto.Signer, active bool, now time.Time) error {
	serial := SerialString(cert.SerialNumber)
	sealed := ""
	if key != nil {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return fmt.Errorf("encode %s key: %w", kind, err)
		}
		if sealed, err = ca.sealer.Seal(der, keyContext(serial)); err != nil {
			return fmt.Errorf("seal %s key: %w", kind, err)
		}
	}
	_, err := tx.Exec(ctx, `INSERT INTO identity_ca_certs (serial, kind, active, der, sealed_key, not_after, crl_number, created_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?)`,
		serial, kind, boolInt(active), cert.Raw, sealed, store.Nanos(cert.NotAfter), store.Nanos(now))
	return err
}

func readConfig(ctx context.Context, q store.Querier, lock string) (caConfig, bool, error) {
	var c caConfig
	var offline int64
	err := q.QueryRow(ctx, `SELECT key_algorithm, organization, root_offline FROM identity_ca WHERE id = 1`+lock).Scan(&c.KeyAlgorithm, &c.Organization, &offline)
	if errors.Is(err, sql.ErrNoRows) {
		return caConfig{}, false, nil
	}
	if err != nil {
		return caConfig{}, false, fmt.Errorf("read certificate authority: %w", err)
	}
	c.RootOffline = offline != 0
	return c, true, nil
}

// loadCAs returns every CA certificate, the active intermediate first,
// then newest first.
func loadCAs(ctx context.Context, q store.Querier) ([]caCert, error) {
	rows, err := q.Query(ctx, `SELECT serial, kind, active, der, sealed_key, crl_number FROM identity_ca_certs ORDER BY active DESC, created_at DESC, serial`)
	if err != nil {
		return nil, fmt.Errorf("load CA certificates: %w", err)
	}
	defer rows.Close()
	var out []caCert
	for rows.Next() {
		var c caCert
		var active int64
		var der []byte
		if err := rows.Scan(&c.Serial, &c.Kind, &active, &der, &c.SealedKey, &c.CRLNumber); err != nil {
			return nil, fmt.Errorf("load CA certificates: %w", err)
		}
		c.Active = active != 0
		if c.Cert, err = x509.ParseCertificate(der); err != nil {
			return nil, fmt.Errorf("load CA certificate %s: %w", c.Serial, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load CA certificates: %w", err)
	}
	return out, nil
}

func findRoot(cas []caCert) (caCert, error) {
	for _, c := range cas {
		if c.Kind == kindRoot {
			return c, nil
		}
	}
	return caCert{}, errNotInitialized
}

func findActive(cas []caCert) (caCert, error) {
	for _, c := range cas {
		if c.Kind == kindIntermediate && c.Active {
			return c, nil
		}
	}
	return caCert{}, errNotInitialized
}

// signerFor opens a CA's sealed key, once per process.
func (ca *CA) signerFor(c caCert) (crypto.Signer, error) {
	ca.mu.Lock()
	s, ok := ca.signers[c.Serial]
	ca.mu.Unlock()
	if ok {
		return s, nil
	}
	if c.SealedKey == "" {
		return nil, apperr.Errorf(apperr.Conflict, "the key of CA certificate %s is not held by this server", c.Serial)
	}
	der, err := ca.sealer.Open(c.SealedKey, keyContext(c.Serial))
	if err != nil {
		return nil, fmt.Errorf("open key of CA certificate %s: %w", c.Serial, err)
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse key of CA certificate %s: %w", c.Serial, err)
	}
	s, ok = key.(crypto.Signer)
	if !ok || !samePublicKey(s.Public(), c.Cert.PublicKey) {
		return nil, fmt.Errorf("key of CA certificate %s does not match it", c.Serial)
	}
	ca.mu.Lock()
	ca.signers[c.Serial] = s
	ca.mu.Unlock()
	return s, nil
}

// writeKeyFile writes key as PEM to a new file with mode 0600.
func writeKeyFile(path string, key crypto.Signer) error {
	data, err := EncodeKeyPEM(key)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return apperr.Errorf(apperr.Conflict, "offline root key file %s already exists; it is never overwritten", path)
	}
	if err != nil {
		return fmt.Errorf("write offline root key: %w", err)
	}
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("write offline root key %s: %w", path, err)
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
