/* policy_geoip.c -- country and AS number of a peer (libmaxminddb), and the ISO 3166-1 code list. */
#include <netinet/in.h>
#include <string.h>

#include "policy/policy_priv.h"

/* ISO 3166-1 alpha-2, officially assigned codes (249), plus XK: not ISO,
 * but the code MaxMind databases use for Kosovo. */
static const char iso_codes[] =
    "ADAEAFAGAIALAMAOAQARASATAUAWAXAZ"
    "BABBBDBEBFBGBHBIBJBLBMBNBOBQBRBSBTBVBWBYBZ"
    "CACCCDCFCGCHCICKCLCMCNCOCRCUCVCWCXCYCZ"
    "DEDJDKDMDODZ" "ECEEEGEHERESET" "FIFJFKFMFOFR"
    "GAGBGDGEGFGGGHGIGLGMGNGPGQGRGSGTGUGWGY" "HKHMHNHRHTHU"
    "IDIEILIMINIOIQIRISIT" "JEJMJOJP" "KEKGKHKIKMKNKPKRKWKYKZ"
    "LALBLCLILKLRLSLTLULVLY"
    "MAMCMDMEMFMGMHMKMLMMMNMOMPMQMRMSMTMUMVMWMXMYMZ"
    "NANCNENFNGNINLNONPNRNUNZ" "OM" "PAPEPFPGPHPKPLPMPNPRPSPTPWPY"
    "QA" "RERORSRURW" "SASBSCSDSESGSHSISJSKSLSMSNSOSRSSSTSVSXSYSZ"
    "TCTDTFTGTHTJTKTLTMTNTOTRTTTVTWTZ" "UAUGUMUSUYUZ" "VAVCVEVGVIVNVU"
    "WFWS" "XK" "YEYT" "ZAZMZW";

bool
pol_country_known(const char *code)
{
	if (strlen(code) != 2)
		return false;
	for (size_t i = 0; i + 1 < sizeof iso_codes; i += 2)
		if (iso_codes[i] == code[0] && iso_codes[i + 1] == code[1])
			return true;
	return false;
}

/* Databases hold IPv4 once: an IPv4 peer, mapped or not, is looked up as
 * plain IPv4 (pol_addr_to_sockaddr turns a mapped address into AF_INET). */
static const struct sockaddr *
unmap(const struct sockaddr *sa, struct sockaddr_storage *ss)
{
	struct pol_addr a;

	if (!pol_addr_from_sockaddr(sa, &a) || !pol_addr_is_v4(&a))
		return sa;
	(void)pol_addr_to_sockaddr(&a, 0, ss);
	return (const struct sockaddr *)ss;
}

/* 1 with *d filled, 0 when the database has nothing, -1 on read error. */
static int
lookup(const MMDB_s *db, const struct sockaddr *sa, MMDB_entry_data_s *d,
    const char *const *path)
{
	struct sockaddr_storage v4;
	MMDB_lookup_result_s r;
	int mmerr, rc;

	if (sa == NULL || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
		return 0;
	r = MMDB_lookup_sockaddr(db, unmap(sa, &v4), &mmerr);
	if (mmerr == MMDB_IPV6_LOOKUP_IN_IPV4_DATABASE_ERROR)
		return 0;
	if (mmerr != MMDB_SUCCESS)
		return -1;
	if (!r.found_entry)
		return 0;
	rc = MMDB_aget_value(&r.entry, d, path);
	if (rc == MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR)
		return 0;
	if (rc != MMDB_SUCCESS)
		return -1;
	return d->has_data ? 1 : 0;
}

int
pol_geoip_country(const MMDB_s *db, const struct sockaddr *sa, char cc[3])
{
	static const char *const path[] = { "country", "iso_code", NULL };
	MMDB_entry_data_s d;
	int rc = lookup(db, sa, &d, path);

	if (rc != 1)
		return rc;
	if (d.type != MMDB_DATA_TYPE_UTF8_STRING || d.data_size != 2)
		return 0;
	memcpy(cc, d.utf8_string, 2);
	cc[2] = '\0';
	return 1;
}

int
pol_geoip_asn(const MMDB_s *db, const struct sockaddr *sa, uint32_t *asn)
{
	static const char *const path[] = { "autonomous_system_number", NULL };
	MMDB_entry_data_s d;
	int rc = lookup(db, sa, &d, path);

	if (rc != 1)
		return rc;
	switch (d.type) {
	case MMDB_DATA_TYPE_UINT32:
		*asn = d.uint32;
		return 1;
	case MMDB_DATA_TYPE_UINT16:
		*asn = d.uint16;
		return 1;
	case MMDB_DATA_TYPE_UINT64:
		if (d.uint64 > UINT32_MAX)
			return 0;
		*asn = (uint32_t)d.uint64;
		return 1;
	default:
		return 0;
	}
}
