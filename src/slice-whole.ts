/**
 * `text` cut to at most `max` UTF-16 units, never between the two halves of a surrogate pair:
 * half an emoji is no valid Unicode, and a strict JSON server (a model's, say) refuses the whole
 * request over it.
 */
export function sliceWhole(text: string, max: number): string {
  if (text.length <= max) return text;
  const code = text.charCodeAt(max - 1);
  return text.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max);
}
