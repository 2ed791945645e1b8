package disk

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// loadSecret reads Dir/secret, or creates it: written to a temporary file,
// synced, then renamed over, with the directory synced, so that a crash
// leaves either no secret or a whole one. Only the process holding the
// engine's lock gets here, so nobody else creates it meanwhile.
func loadSecret(dir string) ([]byte, error) {
	path := filepath.Join(dir, "secret")
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) != SecretSize {
			return nil, fmt.Errorf("%w: %s holds %d bytes, a secret is %d; restore it from a backup, or remove the directory to start an empty store (its keys cannot be read without it)",
				ErrBadSecret, path, len(b), SecretSize)
		}
		return b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("disk: reading the store's secret: %w", err)
	}
	secret := make([]byte, SecretSize)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("disk: making the store's secret: %w", err)
	}
	tmp := path + ".tmp"
	if err := writeSynced(tmp, secret); err != nil {
		return nil, fmt.Errorf("disk: writing the store's secret: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("disk: writing the store's secret: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return secret, nil
}

func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
