// The one door to mime-types, loaded on first use: its database holds about 1.6 MiB of the
// front's memory, and a server without a static route (or before its first static
// request) never needs it.
import type * as Mime from 'mime-types';

let loaded: typeof Mime | undefined;

export function mimeTypes(): typeof Mime {
  return (loaded ??= require('mime-types') as typeof Mime);
}
