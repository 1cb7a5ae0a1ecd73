/**
 * The licence of this API, as the OpenAPI document names it (`info.license`) and /docs/license
 * states it: the farm's own code is proprietary (package.json: `UNLICENSED`). What a render may be
 * used for is another matter, decided by the licence of the model pack that made it.
 */
export const LICENSE_NAME = 'Proprietary (UNLICENSED)';

export const LICENSE_PATH = '/docs/license';

export const LICENSE_TEXT = `celfarm API: ${LICENSE_NAME}

The celfarm software and this API are proprietary. No licence is granted to use, copy, modify or
distribute them beyond what the farm's owner has agreed with you.

Colorized outputs are made by the model pack the farm serves, and the pack's own licence governs
their use (pack.json "licence"; the official ColorizeDiffusion v2 weights are CC BY-NC-SA 4.0,
non-commercial use only).
`;
