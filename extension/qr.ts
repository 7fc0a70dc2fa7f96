// The QR code of a URL as an SVG document, for the "Serve on My Network" panel. Pure (no
// vscode); the qrcode package does the encoding (its own tests cover it).
import QRCode from 'qrcode';

export function qrSvg(url: string): Promise<string> {
  return QRCode.toString(url, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
}

/** The same as a data: URL, for an <img> under a webview's strict CSP. */
export async function qrDataUrl(url: string): Promise<string> {
  return `data:image/svg+xml;base64,${Buffer.from(await qrSvg(url)).toString('base64')}`;
}
