#!/usr/bin/perl
# make_test_mmdb.pl -- writes the small GeoIP database the policy tests use (no network).
# Usage: make_test_mmdb.pl OUT.mmdb
# Country and AS number live in one database, as pbxgate reads both from
# the single geoip_db. Documentation ranges are kept (they are what the
# tests use), so remove_reserved_networks must be off.
use strict;
use warnings;
use MaxMind::DB::Writer::Tree;

my $out = shift or die "usage: $0 OUT.mmdb\n";

my $tree = MaxMind::DB::Writer::Tree->new(
	ip_version               => 6,
	record_size              => 28,
	database_type            => 'pbxgate-Test-Country-ASN',
	languages                => ['en'],
	description              => { en => 'pbxgate policy test data' },
	remove_reserved_networks => 0,
	map_key_type_callback    => sub {
		my $key = shift;
		return {
			country                  => 'map',
			iso_code                 => 'utf8_string',
			autonomous_system_number => 'uint32',
		}->{$key};
	},
);

# network => [country, ASN]
my %data = (
	'203.0.113.0/24'   => ['JP', 64500],
	'198.51.100.0/24'  => ['US', 64501],
	'192.0.2.0/25'     => ['KP', 64502],
	'2001:db8:10::/48' => ['JP', 64500],
	'2001:db8:66::/48' => ['RU', 64503],
);
for my $net (sort keys %data) {
	my ($cc, $asn) = @{ $data{$net} };
	$tree->insert_network($net, {
		country                  => { iso_code => $cc },
		autonomous_system_number => $asn,
	});
}
# 192.0.2.128/25 has an AS number but no country.
$tree->insert_network('192.0.2.128/25', { autonomous_system_number => 64504 });

open my $fh, '>:raw', $out or die "$out: $!\n";
$tree->write_tree($fh);
close $fh or die "$out: $!\n";
