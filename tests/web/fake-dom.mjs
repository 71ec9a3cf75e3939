// Just enough of a DOM for the viewer's modules that build elements (grid.js and what it
// uses) to run under node: elements with children, attributes, classes, dataset, focus, and
// events that bubble to the parents unless stopped. Selectors: tag, .class, [attr], [attr="v"],
// combined and comma-separated. install() puts document and the window's listeners on globalThis.

class FakeEvent {
  constructor(type, { bubbles = false } = {}) {
    Object.assign(this, { type, bubbles, target: null, currentTarget: null, defaultPrevented: false });
    this.propagationStopped = false;
  }
  stopPropagation() { this.propagationStopped = true; }
  preventDefault() { this.defaultPrevented = true; }
}

class Listeners {
  constructor() { this.byType = new Map(); }
  addEventListener(type, fn) {
    if (!this.byType.has(type)) this.byType.set(type, new Set());
    this.byType.get(type).add(fn);
  }
  removeEventListener(type, fn) { this.byType.get(type)?.delete(fn); }
  fire(event) {
    for (const fn of [...(this.byType.get(event.type) ?? [])]) {
      event.currentTarget = this;
      if (typeof fn === 'function') fn.call(this, event);
      else fn.handleEvent(event);
    }
  }
}

function matchesOne(node, selector) {
  const parts = selector.trim().match(/^([a-z0-9-]*)((?:\.[\w-]+)*)((?:\[[^\]]+\])*)$/i);
  if (!parts) return false;
  const [, tag, classes, attrs] = parts;
  if (tag && node.tagName !== tag.toUpperCase()) return false;
  for (const name of classes.split('.').filter(Boolean)) if (!node.classList.contains(name)) return false;
  for (const [, name, value] of attrs.matchAll(/\[([\w-]+)(?:="([^"]*)")?\]/g)) {
    if (!node.hasAttribute(name)) return false;
    if (value !== undefined && node.getAttribute(name) !== value) return false;
  }
  return true;
}

export class FakeElement extends Listeners {
  constructor(tagName, ownerDocument) {
    super();
    this.tagName = tagName.toUpperCase();
    this.ownerDocument = ownerDocument;
    this.children = [];
    this.parentNode = null;
    this.attributes = new Map();
    this.dataset = {};
    this.style = { setProperty() {}, removeProperty() {} };
    this.hidden = false;
    this._text = '';
    const element = this;
    this.classList = {
      contains: (name) => element.className.split(/\s+/).includes(name),
      add: (...names) => { for (const n of names) if (!element.classList.contains(n)) element.className = `${element.className} ${n}`.trim(); },
      remove: (...names) => { element.className = element.className.split(/\s+/).filter((n) => !names.includes(n)).join(' '); },
      toggle: (name, force = !element.classList.contains(name)) => {
        if (force) element.classList.add(name);
        else element.classList.remove(name);
        return force;
      },
    };
  }

  get className() { return this.attributes.get('class') ?? ''; }
  set className(value) { this.attributes.set('class', String(value)); }
  get id() { return this.attributes.get('id') ?? ''; }
  set id(value) { this.attributes.set('id', String(value)); }
  get textContent() { return this._text + this.children.map((c) => c.textContent).join(''); }
  set textContent(value) {
    for (const child of this.children) child.parentNode = null;
    this.children = [];
    this._text = String(value ?? '');
  }
  get value() {
    if (this.tagName !== 'SELECT') return this._value ?? '';
    return this._value ?? this.children.find((c) => c.tagName === 'OPTION')?.getAttribute('value') ?? '';
  }
  set value(value) { this._value = String(value); }
  get isConnected() {
    let node = this;
    while (node.parentNode) node = node.parentNode;
    return node === this.ownerDocument.documentElement;
  }

  setAttribute(name, value) { this.attributes.set(name, String(value)); }
  getAttribute(name) { return this.attributes.has(name) ? this.attributes.get(name) : null; }
  hasAttribute(name) { return this.attributes.has(name); }
  removeAttribute(name) { this.attributes.delete(name); }
  toggleAttribute(name, force = !this.hasAttribute(name)) {
    if (force) this.setAttribute(name, '');
    else this.removeAttribute(name);
    return force;
  }

  _adopt(nodes) {
    return nodes.map((node) => {
      if (typeof node === 'string') {
        const text = new FakeElement('#text', this.ownerDocument);
        text._text = node;
        return text;
      }
      node.remove();
      node.parentNode = this;
      return node;
    });
  }
  append(...nodes) { this.children.push(...this._adopt(nodes)); }
  prepend(...nodes) { this.children.unshift(...this._adopt(nodes)); }
  insertBefore(node, ref) {
    const [adopted] = this._adopt([node]);
    const index = ref ? this.children.indexOf(ref) : -1;
    if (index < 0) this.children.push(adopted);
    else this.children.splice(index, 0, adopted);
    return node;
  }
  before(...nodes) {
    const parent = this.parentNode;
    if (!parent) return;
    for (const node of nodes) parent.insertBefore(node, this);
  }
  replaceChildren(...nodes) {
    this.textContent = '';
    this.append(...nodes);
  }
  remove() {
    if (!this.parentNode) return;
    this.parentNode.children = this.parentNode.children.filter((c) => c !== this);
    this.parentNode = null;
  }
  contains(node) {
    for (let n = node; n; n = n.parentNode) if (n === this) return true;
    return false;
  }

  matches(selector) { return selector.split(',').some((one) => matchesOne(this, one)); }
  closest(selector) {
    for (let n = this; n; n = n.parentNode) if (n.matches?.(selector)) return n;
    return null;
  }
  querySelectorAll(selector) {
    const found = [];
    const walk = (node) => {
      for (const child of node.children) {
        if (child.matches(selector)) found.push(child);
        walk(child);
      }
    };
    walk(this);
    return found;
  }
  querySelector(selector) { return this.querySelectorAll(selector)[0] ?? null; }

  focus() { this.ownerDocument.activeElement = this; }
  blur() { if (this.ownerDocument.activeElement === this) this.ownerDocument.activeElement = this.ownerDocument.body; }
  play() { return Promise.resolve(); }
  setPointerCapture() {}
  getBoundingClientRect() { return { left: 0, top: 0, width: 0, height: 0, right: 0, bottom: 0 }; }

  /** Dispatch at this element; bubbles to the parents unless a listener stops it. */
  dispatchEvent(event) {
    event.target ??= this;
    for (let node = this; node; node = event.bubbles ? node.parentNode : null) {
      node.fire(event);
      if (event.propagationStopped) break;
    }
    return !event.defaultPrevented;
  }
  click() { this.dispatchEvent(new FakeEvent('click', { bubbles: true })); }
}

export class FakeDocument extends Listeners {
  constructor() {
    super();
    this.documentElement = new FakeElement('html', this);
    this.body = new FakeElement('body', this);
    this.documentElement.append(this.body);
    this.activeElement = this.body;
    this.hidden = false;
  }
  createElement(tag) { return new FakeElement(tag, this); }
  createElementNS(_ns, tag) { return new FakeElement(tag, this); }
  querySelector(selector) { return this.documentElement.querySelector(selector); }
  querySelectorAll(selector) { return this.documentElement.querySelectorAll(selector); }
}

/** A fresh document (and window listeners) on globalThis; returns the document. */
export function install() {
  const document = new FakeDocument();
  const window = new Listeners();
  Object.assign(globalThis, {
    document,
    addEventListener: (type, fn) => window.addEventListener(type, fn),
    removeEventListener: (type, fn) => window.removeEventListener(type, fn),
  });
  globalThis.MediaStream ??= class { addTrack() {} };
  globalThis.requestAnimationFrame ??= () => 1;
  globalThis.cancelAnimationFrame ??= () => {};
  return document;
}

export { FakeEvent };
