// UpscalerJS's ESM builds (upscaler, @upscalerjs/*) import directories ('..') and files without their extension, as a
// bundler allows and Node's ESM loader does not: resolve those to `<dir>/index.js` and `<file>.js`.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

export async function resolve(specifier, context, next) {
  if ((specifier.startsWith('.') || specifier.startsWith('/')) && /\/node_modules\/(upscaler|@upscalerjs)\//.test(context.parentURL ?? '')) {
    const url = new URL(specifier, context.parentURL);
    const file = fileURLToPath(url);
    if (fs.existsSync(file) && fs.statSync(file).isDirectory()) {
      return next(new URL('index.js', url.href.endsWith('/') ? url : `${url.href}/`).href, context);
    }
    if (!fs.existsSync(file) && fs.existsSync(`${file}.js`)) {
      return next(`${url.href}.js`, context);
    }
  }
  return next(specifier, context);
}
