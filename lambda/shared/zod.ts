// zod for the Lambda code: `zod/mini` (the functional API, a third of the size of classic `zod` in a
// bundle) with the English messages registered once. Classic zod loads the English locale itself;
// zod/mini loads none, so without this every message would be the generic "Invalid input".
//
//   import * as z from './zod';
//
// Import nothing from 'zod' (classic) anywhere in a handler's import graph: one such import brings
// the whole of classic back into that bundle. Nor `z.locales` / `import { z } from 'zod/mini'`, which
// pull every locale in.
import { config } from 'zod/mini';
import { en } from 'zod/v4/locales';

config(en());

export * from 'zod/mini';
