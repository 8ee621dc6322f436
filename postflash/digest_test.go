package postflash

import (
	"strings"
	"testing"
)

// TestDigestRFC7616 checks the worked example of RFC 7616 §3.9.1 for both
// algorithms.
func TestDigestRFC7616(t *testing.T) {
	const hdr = `Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=%s, ` +
		`nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`
	tests := []struct{ alg, response string }{
		{"MD5", "8ca523f5e9506fed4657c9700eebdbec"},
		{"SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"},
	}
	for _, tc := range tests {
		t.Run(tc.alg, func(t *testing.T) {
			chs := parseChallenges([]string{strings.Replace(hdr, "%s", tc.alg, 1)})
			if len(chs) != 1 || chs[0].scheme != "digest" {
				t.Fatalf("challenges %+v", chs)
			}
			got, err := digestAuthorization(chs[0], "GET", "/dir/index.html", "Mufasa", "Circle of Life",
				"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{
				`response="` + tc.response + `"`, `username="Mufasa"`, `uri="/dir/index.html"`, "qop=auth,", "nc=00000001",
				`opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`, "algorithm=" + tc.alg,
			} {
				if !strings.Contains(got, want) {
					t.Errorf("%s\nlacks %s", got, want)
				}
			}
		})
	}
}

func TestParseChallenges(t *testing.T) {
	chs := parseChallenges([]string{
		`Basic realm="OpenBeken HTTP Server", Digest realm="asyncesp", qop="auth", nonce="a\"b", opaque=xyz`,
		`Bearer`,
	})
	if len(chs) != 3 {
		t.Fatalf("got %d challenges: %+v", len(chs), chs)
	}
	if chs[0].scheme != "basic" || chs[0].params["realm"] != "OpenBeken HTTP Server" {
		t.Errorf("first %+v", chs[0])
	}
	if chs[1].scheme != "digest" || chs[1].params["nonce"] != `a"b` || chs[1].params["opaque"] != "xyz" || chs[1].params["qop"] != "auth" {
		t.Errorf("second %+v", chs[1])
	}
	if chs[2].scheme != "bearer" {
		t.Errorf("third %+v", chs[2])
	}
}

func TestDigestRefusesWhatItCannotDo(t *testing.T) {
	for _, params := range []map[string]string{
		{"algorithm": "SHA-1", "nonce": "n"},
		{"qop": "auth-int", "nonce": "n"},
	} {
		if _, err := digestAuthorization(challenge{scheme: "digest", params: params}, "GET", "/", "u", "p", "c"); err == nil {
			t.Errorf("%v accepted", params)
		}
	}
	// RFC 2069 form (no qop) and userhash.
	got, err := digestAuthorization(challenge{scheme: "digest", params: map[string]string{"realm": "r", "nonce": "n", "userhash": "true"}},
		"GET", "/", "u", "p", "c")
	if err != nil || strings.Contains(got, "qop=") || !strings.Contains(got, "userhash=true") || strings.Contains(got, `username="u"`) {
		t.Errorf("got %q, %v", got, err)
	}
}
