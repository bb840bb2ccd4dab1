import { applyIpPolicy, applyIpPolicyToProperties } from '../../src/projects/ip';

describe('IP policy', () => {
  it.each([
    ['203.0.113.42', '203.0.113.0'],
    ['10.0.0.255', '10.0.0.0'],
    ['2001:db8:abcd:12::1', '2001:db8:abcd::'],
    ['2001:0db8:abcd:0012:0000:0000:0000:0001', '2001:db8:abcd::'],
    ['2001:db8::1', '2001:db8::'],
    ['::1', '::'],
    ['fe80::1%eth0', 'fe80::'],
    ['::ffff:198.51.100.7', '::ffff:198.51.100.0'],
    ['2001:db8:1:2:3:4:1.2.3.4', '2001:db8:1::'],
    ['not an ip', undefined],
    ['1.2.3', undefined],
  ])('anonymise %s → %s (IPv4: last octet zeroed; IPv6: the /48; anything else dropped)', (ip, want) => {
    expect(applyIpPolicy(ip, 'anonymise')).toBe(want);
  });

  it('keep passes it on, drop removes it', () => {
    expect(applyIpPolicy('203.0.113.42', 'keep')).toBe('203.0.113.42');
    expect(applyIpPolicy('203.0.113.42', 'drop')).toBeUndefined();
    expect(applyIpPolicy(undefined, 'anonymise')).toBeUndefined();
  });

  it('applies to $ip in properties, in place', () => {
    const p = { $ip: '203.0.113.42', route: '/x' };
    expect(applyIpPolicyToProperties(p, 'anonymise')).toEqual({ $ip: '203.0.113.0', route: '/x' });
    expect(applyIpPolicyToProperties({ $ip: '203.0.113.42' }, 'drop')).toEqual({});
    expect(applyIpPolicyToProperties({ $ip: 42 }, 'anonymise')).toEqual({});
    const kept = { $ip: '203.0.113.42' };
    expect(applyIpPolicyToProperties(kept, 'keep')).toBe(kept);
    expect(applyIpPolicyToProperties({ a: 1 }, 'drop')).toEqual({ a: 1 });
  });
});
