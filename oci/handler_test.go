package oci

import "testing"

func TestParseFeatures(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		want Features
	}{
		{"runc 1.1 (no idmap, no rro)", `{"ociVersionMin":"1.0.0","mountOptions":["ro","rw","bind"]}`, Features{}},
		{"runc 1.2", `{"mountOptions":["ro","rro","bind"],"linux":{"mountExtensions":{"idmap":{"enabled":true}}}}`, Features{RecursiveReadOnlyMounts: true, UserNamespaces: true}},
		{"idmap disabled", `{"mountOptions":["rro"],"linux":{"mountExtensions":{"idmap":{"enabled":false}}}}`, Features{RecursiveReadOnlyMounts: true}},
		{"garbage", `not json`, Features{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseFeatures([]byte(tc.doc)); got != tc.want {
				t.Errorf("parseFeatures() = %+v, want %+v", got, tc.want)
			}
		})
	}
}
