// The one place that loads @peculiar/x509. It needs a Reflect metadata polyfill (tsyringe)
// before import; everything else imports x509 from here.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };
export const subtle = webcrypto.subtle;

export const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const ECDSA_SHA256 = { name: 'ECDSA', hash: 'SHA-256' } as const;

export type CryptoKey = import('node:crypto').webcrypto.CryptoKey;
export type CryptoKeyPair = import('node:crypto').webcrypto.CryptoKeyPair;
