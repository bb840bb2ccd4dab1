/**
 * Where an AWS service answers: the endpoint configured for it, else the public endpoint of the Region's
 * partition (`amazonaws.com`; `amazonaws.com.cn` in the China Regions, which cdk.json targets too).
 */

/** DNS suffix of a Region's partition. */
export function dnsSuffix(region: string): string {
  if (region.startsWith('cn-')) return 'amazonaws.com.cn';
  if (region.startsWith('us-isob-')) return 'sc2s.sgov.gov';
  if (region.startsWith('us-iso-')) return 'c2s.ic.gov';
  return 'amazonaws.com';
}

/** `https://<service>.<region>.<partition suffix>/` for the endpoint prefixes tally uses (sqs, dynamodb, secretsmanager). */
export function defaultEndpoint(endpointPrefix: string, region: string): string {
  return `https://${endpointPrefix}.${region}.${dnsSuffix(region)}/`;
}
