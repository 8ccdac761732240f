// Package suitstore is a directory-backed processor.ComponentStore: the
// component store behind `teep suit process --store DIR`.
//
// Layout:
//
//	DIR/index.json    committed state: components and manifest records
//	DIR/objects/      one file per component content or stored envelope
//	DIR/lock          held (flock) while the store is open
//
// A transaction writes new content to fresh files under objects/ (fsynced
// when their writer closes). Commit writes the new index to index.json.tmp,
// fsyncs it and renames it over index.json (the single atomic commit point),
// fsyncs the directory, then deletes objects the new index no longer
// references. Open recovers from a crash at any point by deleting
// index.json.tmp and every object the committed index does not reference,
// so a partial component is never visible.
package suitstore
