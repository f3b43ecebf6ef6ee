// Package store is nodeagent's metadata record: one bbolt file holding every
// sandbox, container and image record, each written in a transaction before the
// RPC that made it returns success. Memory is the read model; this is the record.
//
// Records are JSON values in named buckets. The file carries a schema version;
// a file written by a newer, unknown schema is refused rather than misread.
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/containerd/errdefs"
	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is the layout of records this build reads and writes.
const SchemaVersion = 1

var (
	metaBucket = []byte("meta")
	schemaKey  = []byte("schema")
)

// DB is the metadata store.
type DB struct {
	bolt *bolt.DB
}

// Open opens (creating if needed) the store at path and checks its schema.
func Open(path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create store directory: %w", err)
	}
	// A short lock timeout: a second daemon on the same root must fail fast
	// with a clear error, not hang.
	b, err := openChecked(path)
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open store %s: locked by another process: %w", path, errdefs.ErrUnavailable)
		}
		return nil, corrupt(path, err)
	}
	db := &DB{bolt: b}
	if err := db.checkSchema(); err != nil {
		b.Close()
		return nil, err
	}
	return db, nil
}

// openChecked opens the file and verifies every page before anything reads
// a record: bbolt panics on a corrupt page met later, mid-recovery. The file
// holds only records (kilobytes to a few megabytes), so the check is cheap.
func openChecked(path string) (b *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			if b != nil {
				b.Close()
			}
			b, err = nil, fmt.Errorf("%v", r)
		}
	}()
	b, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, err
	}
	err = b.View(func(tx *bolt.Tx) error {
		var errs []error
		for e := range tx.Check() {
			if len(errs) < 3 {
				errs = append(errs, e)
			}
		}
		return errors.Join(errs...)
	})
	if err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// corrupt explains an unreadable store and the way out. nodeagent never
// starts on it: starting afresh would forget every pod, container and image
// while their processes and files still exist, so that is the operator's
// decision, made with the pods stopped.
func corrupt(path string, cause error) error {
	return fmt.Errorf("metadata store %s is corrupt or unreadable (%v); nodeagent will not start on it rather than "+
		"lose its records silently. To recover: stop this node's pods (drain and reboot the node, or kill the "+
		"\"nodeagent shim\" processes), move the file aside (mv %s %s.corrupt) and start nodeagent again: "+
		"it starts with no pods, containers or images, and kubelet recreates them: %w",
		path, cause, path, path, errdefs.ErrDataLoss)
}

func (d *DB) checkSchema() error {
	return d.bolt.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(metaBucket)
		if err != nil {
			return err
		}
		raw := meta.Get(schemaKey)
		if raw == nil {
			return meta.Put(schemaKey, []byte(strconv.Itoa(SchemaVersion)))
		}
		v, err := strconv.Atoi(string(raw))
		if err != nil {
			return fmt.Errorf("store schema %q is not a number", raw)
		}
		if v > SchemaVersion {
			return fmt.Errorf("store schema %d is newer than this build's %d: %w", v, SchemaVersion, errdefs.ErrFailedPrecondition)
		}
		return nil
	})
}

// Close closes the store.
func (d *DB) Close() error { return d.bolt.Close() }

// Put stores v as JSON under bucket/key in its own transaction.
func (d *DB) Put(bucket, key string, v any) error {
	return d.Update(func(tx *Tx) error { return tx.Put(bucket, key, v) })
}

// Get decodes bucket/key into v; a missing record is errdefs.ErrNotFound.
func (d *DB) Get(bucket, key string, v any) error {
	return d.View(func(tx *Tx) error { return tx.Get(bucket, key, v) })
}

// Delete removes bucket/key; deleting a missing record succeeds.
func (d *DB) Delete(bucket, key string) error {
	return d.Update(func(tx *Tx) error { return tx.Delete(bucket, key) })
}

// ForEach calls fn with every record of bucket, in key order.
func (d *DB) ForEach(bucket string, fn func(key string, raw []byte) error) error {
	return d.View(func(tx *Tx) error { return tx.ForEach(bucket, fn) })
}

// Update runs fn in one read-write transaction: all its writes land or none.
func (d *DB) Update(fn func(*Tx) error) error {
	return d.bolt.Update(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) })
}

// View runs fn in a read-only transaction.
func (d *DB) View(fn func(*Tx) error) error {
	return d.bolt.View(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) })
}

// Tx is a transaction over JSON records.
type Tx struct {
	tx *bolt.Tx
}

// Put stores v as JSON under bucket/key.
func (t *Tx) Put(bucket, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s/%s: %w", bucket, key, err)
	}
	b, err := t.tx.CreateBucketIfNotExists([]byte(bucket))
	if err != nil {
		return err
	}
	return b.Put([]byte(key), raw)
}

// Get decodes bucket/key into v; a missing record is errdefs.ErrNotFound.
func (t *Tx) Get(bucket, key string, v any) error {
	b := t.tx.Bucket([]byte(bucket))
	var raw []byte
	if b != nil {
		raw = b.Get([]byte(key))
	}
	if raw == nil {
		return fmt.Errorf("%s %q: %w", bucket, key, errdefs.ErrNotFound)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decode %s/%s: %w", bucket, key, err)
	}
	return nil
}

// Delete removes bucket/key; deleting a missing record succeeds.
func (t *Tx) Delete(bucket, key string) error {
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	return b.Delete([]byte(key))
}

// ForEach calls fn with every record of bucket, in key order. The raw bytes
// are only valid during the call.
func (t *Tx) ForEach(bucket string, fn func(key string, raw []byte) error) error {
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error { return fn(string(k), v) })
}
