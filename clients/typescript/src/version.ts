/** The name and version this client reports when a worker registers. */

export const CLIENT_NAME = 'seedcore-ts';
export const CLIENT_VERSION = '0.1.0';
