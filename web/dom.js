// Small DOM helpers shared by the viewer's modules.

const SVG_NS = 'http://www.w3.org/2000/svg';

/** el('button', 'icon-button', {type: 'button'}) */
export function el(tag, className, attrs = {}) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

/** <svg class="icon"><use href="#icon-NAME"/></svg> from the sprite in index.html. */
export function icon(name, className = 'icon') {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('class', className);
  svg.setAttribute('aria-hidden', 'true');
  const use = document.createElementNS(SVG_NS, 'use');
  use.setAttribute('href', `#icon-${name}`);
  svg.append(use);
  return svg;
}

/** Assign only on change: parts of the page re-render every second with the stats. */
export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/** Focus is in a text field (or similar): keys belong to it, not to shortcuts. */
export function isTyping(target) {
  return Boolean(target?.closest?.('input, textarea, select, [contenteditable]'));
}
