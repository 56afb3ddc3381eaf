// The control panel served at `/` by the robot itself: connects back to the robot that served
// it over WebRTC (signaling = this page's origin), lists its resources grouped by type and gives
// each a card. Built by esbuild into web/static/panel.js (+ panel.css); the page is index.html.
//
// State for tests and for the curious is on `window.peerbotPanel` (status, resources, errors).
import { Struct } from '@bufbuild/protobuf';
import {
  ArmClient,
  BaseClient,
  BoardClient,
  CameraClient,
  commonApi,
  createRobotClient,
  GenericComponentClient,
  GenericServiceClient,
  GripperClient,
  MachineConnectionEvent,
  MotorClient,
  MovementSensorClient,
  RobotClient,
  SensorClient,
  ServoClient,
  StreamClient,
} from '@viamrobotics/sdk';
import './panel.css';

type Status = 'connecting' | 'connected' | 'reconnecting' | 'disconnected';

interface PanelState {
  status: Status;
  transport: string | null;
  rttMs: number | null;
  resources: string[];
  errors: string[];
  connects: number;
}

declare global {
  interface Window {
    peerbotPanel: PanelState;
  }
}

const state: PanelState = {
  status: 'connecting', transport: null, rttMs: null, resources: [], errors: [], connects: 0,
};
window.peerbotPanel = state;

const POLL_MS = 500;
const RTT_MS = 2000;
const RETRY_MS = 3000;
const GIVE_UP_RECONNECT_MS = 20000;
const BASE_POWER = 0.6;

// -- small DOM helpers ------------------------------------------------------------------------------

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

type Attrs = Record<string, string | number | boolean | undefined>;
const el = <K extends keyof HTMLElementTagNameMap>(
  tag: K, attrs: Attrs = {}, ...children: (Node | string)[]
): HTMLElementTagNameMap[K] => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (key === 'class') node.className = String(value);
    else if (key === 'text') node.textContent = String(value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  node.append(...children);
  return node;
};

/** A readable message for anything an SDK call rejects with. */
const errorText = (error: unknown): string => {
  if (error instanceof Error) {
    const raw = (error as Error & { rawMessage?: unknown }).rawMessage;
    return typeof raw === 'string' && raw ? raw : error.message;
  }
  return String(error);
};

const fmt = (value: unknown): string => {
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : value.toFixed(3);
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    // Structured readings (vectors, geopoints, orientations): "x 0 · y 1.500 · z 0", no _type tag.
    return Object.entries(value).filter(([k]) => k !== '_type').sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k} ${fmt(v)}`).join(' · ');
  }
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
};

const toJson = (value: unknown): string => JSON.stringify(value, (_k, v: unknown) =>
  (typeof v === 'bigint' ? v.toString() : v), 2);

let bannerTimer: number | undefined;
const banner = (message: string, kind: 'error' | 'info' = 'error', sticky = false): void => {
  const node = $('banner');
  node.textContent = message;
  node.dataset.kind = kind;
  node.hidden = false;
  if (kind === 'error') state.errors.push(message);
  window.clearTimeout(bannerTimer);
  if (!sticky) bannerTimer = window.setTimeout(() => { node.hidden = true; }, 6000);
};
const clearBanner = (): void => { $('banner').hidden = true; };

// -- cards ------------------------------------------------------------------------------------------

interface Card {
  name: string;
  subtype: string;
  node: HTMLElement;
  /** Called every POLL_MS while connected; must not overlap itself (the ticker guards it). */
  refresh?: () => Promise<void>;
  periodMs?: number;
  /** Reset the card's controls after Stop all. */
  stopped?: () => void;
  busy?: boolean;
  lastRefresh?: number;
}

let robot: RobotClient | null = null;
let cards: Card[] = [];

const card = (name: string, subtype: string, title: string): { node: HTMLElement; body: HTMLElement; err: HTMLElement } => {
  const err = el('div', { class: 'card-error', role: 'alert' });
  const body = el('div', { class: 'card-body' });
  const node = el('section', { class: 'card', 'data-resource': name, 'data-subtype': subtype },
    el('div', { class: 'card-head' }, el('h3', { text: name }), el('span', { class: 'tag', text: title })),
    body, err);
  return { node, body, err };
};

/** Run an action for a card: show its error under the card instead of failing silently. */
const guarded = (err: HTMLElement, what: string, fn: () => Promise<void>) => async (): Promise<void> => {
  try {
    await fn();
    err.textContent = '';
  } catch (error) {
    err.textContent = `${what} failed: ${errorText(error)}`;
    state.errors.push(err.textContent);
  }
};

const button = (label: string, attrs: Attrs, onClick: () => void): HTMLButtonElement => {
  const node = el('button', { type: 'button', ...attrs }, label);
  node.addEventListener('click', onClick);
  return node;
};

const readingsTable = (target: HTMLElement, readings: Record<string, unknown>, sort = true): void => {
  const entries = Object.entries(readings);
  if (sort) entries.sort(([a], [b]) => a.localeCompare(b));
  const rows = entries.map(([key, value]) =>
    el('tr', {}, el('th', { text: key }), el('td', { text: fmt(value) })));
  target.replaceChildren(el('table', { class: 'readings' }, el('tbody', {}, ...rows)));
};

function sensorCard(r: RobotClient, name: string, subtype: string): Card {
  const { node, body, err } = card(name, subtype, subtype === 'sensor' ? 'sensor' : 'movement sensor');
  const table = el('div', { class: 'readings-wrap', 'data-role': 'readings', text: 'waiting for readings…' });
  const stamp = el('div', { class: 'muted small', 'data-role': 'updated' });
  body.append(table, stamp);
  const client = subtype === 'sensor' ? new SensorClient(r, name) : new MovementSensorClient(r, name);
  return {
    name, subtype, node, periodMs: POLL_MS,
    refresh: guarded(err, 'GetReadings', async () => {
      readingsTable(table, await client.getReadings());
      stamp.textContent = `updated ${new Date().toLocaleTimeString()}`;
    }),
  };
}

function motorCard(r: RobotClient, name: string): Card {
  const { node, body, err } = card(name, 'motor', 'motor');
  const client = new MotorClient(r, name);
  const slider = el('input', { type: 'range', min: -1, max: 1, step: 0.05, value: 0, 'data-role': 'power' });
  const value = el('output', { class: 'value', text: '0%' });
  const powered = el('div', { class: 'state', 'data-role': 'powered', 'data-powered': 'false', text: 'not powered' });
  let editing = false;
  slider.addEventListener('input', () => {
    editing = true;
    value.textContent = `${Math.round(Number(slider.value) * 100)}%`;
  });
  slider.addEventListener('change', () => {
    void guarded(err, 'SetPower', async () => {
      try { await client.setPower(Number(slider.value)); } finally { editing = false; }
    })();
  });
  const stop = button('Stop', { class: 'btn danger-outline', 'data-role': 'stop' },
    guarded(err, 'Stop', async () => { await client.stop(); slider.value = '0'; value.textContent = '0%'; }));
  body.append(el('label', { class: 'field' }, el('span', { text: 'Power' }), slider, value),
    el('div', { class: 'row' }, powered, stop));
  return {
    name, subtype: 'motor', node, periodMs: POLL_MS,
    refresh: guarded(err, 'IsPowered', async () => {
      const [on, pct] = await client.isPowered();
      powered.dataset.powered = String(on);
      powered.dataset.power = String(pct);
      powered.textContent = on ? `powered · ${Math.round(pct * 100)}%` : 'not powered';
      powered.classList.toggle('on', on);
      if (!editing && document.activeElement !== slider) {
        slider.value = String(on ? pct : 0);
        value.textContent = `${Math.round(Number(slider.value) * 100)}%`;
      }
    }),
    stopped: () => { slider.value = '0'; value.textContent = '0%'; },
  };
}

let activeBase: BaseClient | null = null;
let baseErr: HTMLElement | null = null;
const DRIVE: Record<string, [number, number]> = {
  up: [BASE_POWER, 0], down: [-BASE_POWER, 0], left: [0, BASE_POWER], right: [0, -BASE_POWER],
};
const drive = async (client: BaseClient, dir: string | null): Promise<void> => {
  if (dir === null) { await client.stop(); return; }
  const [linear, angular] = DRIVE[dir] ?? [0, 0];
  await client.setPower(new commonApi.Vector3({ y: linear }), new commonApi.Vector3({ z: angular }));
};

function baseCard(r: RobotClient, name: string): Card {
  const { node, body, err } = card(name, 'base', 'base');
  const client = new BaseClient(r, name);
  if (activeBase === null) { activeBase = client; baseErr = err; }
  const moving = el('div', { class: 'state', 'data-role': 'moving', text: 'idle' });
  const pad = el('div', { class: 'dpad' });
  const arrows: [string, string][] = [['up', '▲'], ['left', '◀'], ['stop', '■'], ['right', '▶'], ['down', '▼']];
  for (const [dir, glyph] of arrows) {
    const b = el('button', { type: 'button', class: `pad pad-${dir}`, 'data-dir': dir, title: dir }, glyph);
    if (dir === 'stop') {
      b.addEventListener('click', guarded(err, 'Stop', () => client.stop()));
    } else {
      b.addEventListener('pointerdown', guarded(err, 'SetPower', () => drive(client, dir)));
      for (const ev of ['pointerup', 'pointerleave']) {
        b.addEventListener(ev, (e) => {
          if (ev === 'pointerleave' && (e as PointerEvent).buttons === 0) return;
          void guarded(err, 'Stop', () => client.stop())();
        });
      }
    }
    pad.append(b);
  }
  body.append(pad, el('div', { class: 'row' }, moving,
    el('span', { class: 'muted small', text: 'hold a button, or use the arrow keys' })));
  return {
    name, subtype: 'base', node, periodMs: 1000,
    refresh: guarded(err, 'IsMoving', async () => {
      const m = await client.isMoving();
      moving.textContent = m ? 'moving' : 'idle';
      moving.classList.toggle('on', m);
    }),
  };
}

const KEYS: Record<string, string> = { ArrowUp: 'up', ArrowDown: 'down', ArrowLeft: 'left', ArrowRight: 'right' };
let heldKey: string | null = null;
const typing = (): boolean => {
  const a = document.activeElement;
  return a instanceof HTMLInputElement || a instanceof HTMLTextAreaElement;
};
window.addEventListener('keydown', (e) => {
  const dir = KEYS[e.key];
  if (!dir || !activeBase || typing() || e.repeat) return;
  e.preventDefault();
  heldKey = e.key;
  const base = activeBase;
  if (baseErr) void guarded(baseErr, 'SetPower', () => drive(base, dir))();
});
window.addEventListener('keyup', (e) => {
  if (e.key !== heldKey || !activeBase) return;
  heldKey = null;
  const base = activeBase;
  if (baseErr) void guarded(baseErr, 'Stop', () => base.stop())();
});

function servoCard(r: RobotClient, name: string): Card {
  const { node, body, err } = card(name, 'servo', 'servo');
  const client = new ServoClient(r, name);
  const slider = el('input', { type: 'range', min: 0, max: 180, step: 1, value: 90, 'data-role': 'angle' });
  const value = el('output', { class: 'value', text: '—' });
  let editing = false;
  slider.addEventListener('input', () => { editing = true; value.textContent = `${slider.value}°`; });
  slider.addEventListener('change', () => {
    void guarded(err, 'Move', async () => {
      try { await client.move(Number(slider.value)); } finally { editing = false; }
    })();
  });
  body.append(el('label', { class: 'field' }, el('span', { text: 'Angle' }), slider, value));
  return {
    name, subtype: 'servo', node, periodMs: 1000,
    refresh: guarded(err, 'GetPosition', async () => {
      const deg = await client.getPosition();
      if (!editing && document.activeElement !== slider) {
        slider.value = String(deg);
        value.textContent = `${deg}°`;
      }
    }),
  };
}

const GPIO_PINS = ['11', '13', '15', '16'];

function boardCard(r: RobotClient, name: string): Card {
  const { node, body, err } = card(name, 'board', 'board');
  const client = new BoardClient(r, name);
  const grid = el('div', { class: 'gpio' });
  const boxes = new Map<string, HTMLInputElement>();
  for (const pin of GPIO_PINS) {
    const box = el('input', { type: 'checkbox', 'data-pin': pin });
    box.addEventListener('change', guarded(err, `SetGPIO ${pin}`, async () => {
      await client.setGPIO(pin, box.checked);
    }));
    boxes.set(pin, box);
    grid.append(el('label', { class: 'switch' }, box, el('span', { class: 'slider' }), el('span', { text: `GPIO ${pin}` })));
  }
  body.append(grid);
  return {
    name, subtype: 'board', node, periodMs: 2000,
    refresh: guarded(err, 'GetGPIO', async () => {
      for (const [pin, box] of boxes) {
        const high = await client.getGPIO(pin);
        if (document.activeElement !== box) box.checked = high;
      }
    }),
  };
}

function gripperCard(r: RobotClient, name: string): Card {
  const { node, body, err } = card(name, 'gripper', 'gripper');
  const client = new GripperClient(r, name);
  const last = el('div', { class: 'state', 'data-role': 'gripper-state', text: 'no action yet' });
  body.append(el('div', { class: 'row' },
    button('Open', { class: 'btn' }, guarded(err, 'Open', async () => {
      last.textContent = 'opening…'; await client.open(); last.textContent = 'open';
    })),
    button('Grab', { class: 'btn' }, guarded(err, 'Grab', async () => {
      last.textContent = 'grabbing…'; await client.grab(); last.textContent = 'closed';
    })),
    button('Stop', { class: 'btn danger-outline' }, guarded(err, 'Stop', () => client.stop()))),
  last);
  return { name, subtype: 'gripper', node };
}

function armCard(r: RobotClient, name: string): Card {
  const { node, body, err } = card(name, 'arm', 'arm');
  const client = new ArmClient(r, name);
  const pose = el('div', { class: 'readings-wrap', 'data-role': 'pose', text: '—' });
  body.append(el('div', { class: 'muted small', text: 'end position (mm, orientation vector °)' }), pose,
    el('div', { class: 'row' }, button('Stop', { class: 'btn danger-outline' }, guarded(err, 'Stop', () => client.stop()))));
  return {
    name, subtype: 'arm', node, periodMs: 1000,
    refresh: guarded(err, 'GetEndPosition', async () => {
      const p = await client.getEndPosition();
      readingsTable(pose, { x: p.x, y: p.y, z: p.z, o_x: p.oX, o_y: p.oY, o_z: p.oZ, theta: p.theta }, false);
    }),
  };
}

interface DoCommander { doCommand(command: Struct): Promise<unknown> }

function genericCard(name: string, subtype: string, title: string, client: DoCommander): Card {
  const { node, body, err } = card(name, subtype, title);
  const input = el('textarea', { class: 'json', rows: 3, spellcheck: 'false', 'data-role': 'command' });
  input.value = '{"command": "echo", "hello": "peerbot"}';
  const output = el('pre', { class: 'json-out', 'data-role': 'result', text: '' });
  const send = button('Send', { class: 'btn' }, guarded(err, 'DoCommand', async () => {
    let parsed: unknown;
    try { parsed = JSON.parse(input.value); } catch (e) { throw new Error(`not JSON: ${errorText(e)}`); }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('the command must be a JSON object');
    output.textContent = toJson(await client.doCommand(Struct.fromJson(parsed as Record<string, never>)));
  }));
  body.append(el('div', { class: 'muted small', text: 'DoCommand (JSON object)' }), input,
    el('div', { class: 'row' }, send), output);
  return { name, subtype, node };
}

function cameraCard(r: RobotClient, name: string): Card {
  const { node, body, err } = card(name, 'camera', 'camera');
  const client = new CameraClient(r, name);
  const img = el('img', { class: 'frame', alt: `${name} snapshot`, 'data-role': 'snapshot' });
  const video = el('video', { class: 'frame', autoplay: true, muted: true, playsinline: true, hidden: true });
  const empty = el('div', { class: 'frame placeholder', text: 'no image yet' });
  const info = el('div', { class: 'muted small', 'data-role': 'camera-info' });
  const live = el('div', { class: 'live-msg', 'data-role': 'live-msg', hidden: true });
  let url: string | null = null;
  const snapshot = guarded(err, 'GetImages', async () => {
    const { images } = await client.getImages();
    const first = images[0];
    if (!first) throw new Error('the camera returned no image');
    if (url) URL.revokeObjectURL(url);
    url = URL.createObjectURL(new Blob([first.image], { type: first.mimeType }));
    img.src = url;
    empty.hidden = true;
    info.textContent = `${first.mimeType} · ${Math.round(first.image.length / 1024)} KB · ${new Date().toLocaleTimeString()}`;
  });
  let streams: StreamClient | null = null;
  // While live: the robot's own numbers for this camera from /stats (same origin as this page).
  const videoStats = el('div', { class: 'muted', 'data-role': 'video-stats' });
  videoStats.hidden = true;
  let statsTimer: ReturnType<typeof setInterval> | undefined;
  const showVideoStats = async (): Promise<void> => {
    try {
      const response = await fetch('/stats', { cache: 'no-store' });
      const stats = (await response.json()) as {
        cameras?: Record<
          string,
          { viewers: number; fps: number; encoders?: number; encoded_fps?: number; bitrate_kbps?: number }
        >;
      };
      const cam = stats.cameras?.[name.replaceAll(':', '+')];
      if (!cam) return;
      videoStats.dataset.viewers = String(cam.viewers);
      const parts = [`${cam.viewers} viewer${cam.viewers === 1 ? '' : 's'}`, `capturing ${cam.fps.toFixed(1)} fps`];
      if (cam.encoders !== undefined) {
        // One VP8 encoder per picture size in use, shared by every viewer of that size.
        videoStats.dataset.encoders = String(cam.encoders);
        parts.push(`${cam.encoders} encoder${cam.encoders === 1 ? '' : 's'}`);
      }
      if (cam.encoded_fps !== undefined && cam.bitrate_kbps !== undefined) {
        // What the RTP senders sent, summed over viewers.
        videoStats.dataset.encodedFps = String(cam.encoded_fps);
        videoStats.dataset.bitrateKbps = String(cam.bitrate_kbps);
        parts.push(`sending ${cam.encoded_fps.toFixed(1)} fps`, `${cam.bitrate_kbps.toFixed(0)} kbit/s`);
      }
      videoStats.textContent = parts.join(' · ');
      videoStats.hidden = false;
    } catch {
      videoStats.hidden = true; // a panel served from elsewhere has no /stats: the numbers are optional
    }
  };
  const stopVideoStats = (): void => {
    clearInterval(statsTimer);
    statsTimer = undefined;
    videoStats.hidden = true;
  };
  const toggle = el('input', { type: 'checkbox', 'data-role': 'live' });
  toggle.addEventListener('change', () => {
    void (async () => {
      if (toggle.checked) {
        live.hidden = false;
        live.dataset.kind = 'info';
        live.textContent = 'starting live video…';
        try {
          streams ??= new StreamClient(r);
          const stream = await streams.getStream(name);
          video.srcObject = stream;
          video.hidden = false;
          img.hidden = true;
          live.hidden = true;
          void showVideoStats();
          statsTimer = setInterval(() => { void showVideoStats(); }, 1000);
        } catch (error) {
          toggle.checked = false;
          live.dataset.kind = 'error';
          const why = errorText(error);
          live.textContent = /unimplemented/i.test(why)
            ? `Live video not available: this robot does not serve video streams yet (${why}). Use Snapshot.`
            : `Live video not available: ${why}`;
          state.errors.push(live.textContent);
        }
      } else {
        stopVideoStats();
        video.hidden = true;
        video.srcObject = null;
        img.hidden = false;
        live.hidden = true;
        if (streams) {
          try { await streams.remove(name); } catch (error) { err.textContent = `RemoveStream failed: ${errorText(error)}`; }
        }
      }
    })();
  });
  body.append(el('div', { class: 'frame-wrap' }, img, video, empty), info, videoStats, live,
    el('div', { class: 'row' }, button('Snapshot', { class: 'btn', 'data-role': 'snap' }, () => { void snapshot(); }),
      el('label', { class: 'switch' }, toggle, el('span', { class: 'slider' }), el('span', { text: 'Live' }))));
  void snapshot();
  return { name, subtype: 'camera', node };
}

// -- layout -----------------------------------------------------------------------------------------

const GROUPS: [string, string][] = [
  ['rdk:component:camera', 'Cameras'], ['rdk:component:base', 'Bases'], ['rdk:component:motor', 'Motors'],
  ['rdk:component:servo', 'Servos'], ['rdk:component:arm', 'Arms'], ['rdk:component:gripper', 'Grippers'],
  ['rdk:component:board', 'Boards'], ['rdk:component:sensor', 'Sensors'],
  ['rdk:component:movement_sensor', 'Movement sensors'], ['rdk:component:generic', 'Generic components'],
  ['rdk:service:generic', 'Generic services'],
];

function makeCard(r: RobotClient, api: string, name: string): Card {
  const subtype = api.split(':')[2] ?? api;
  switch (api) {
    case 'rdk:component:sensor':
    case 'rdk:component:movement_sensor': return sensorCard(r, name, subtype);
    case 'rdk:component:motor': return motorCard(r, name);
    case 'rdk:component:base': return baseCard(r, name);
    case 'rdk:component:servo': return servoCard(r, name);
    case 'rdk:component:board': return boardCard(r, name);
    case 'rdk:component:gripper': return gripperCard(r, name);
    case 'rdk:component:arm': return armCard(r, name);
    case 'rdk:component:camera': return cameraCard(r, name);
    case 'rdk:component:generic': return genericCard(name, subtype, 'generic', new GenericComponentClient(r, name));
    case 'rdk:service:generic': return genericCard(name, subtype, 'generic service', new GenericServiceClient(r, name));
    default: {
      // Anything else still answers DoCommand through the generic component shape.
      const c = genericCard(name, subtype, api, new GenericComponentClient(r, name));
      return c;
    }
  }
}

async function render(r: RobotClient): Promise<void> {
  const names = await r.resourceNames();
  const byApi = new Map<string, string[]>();
  for (const n of names) {
    const api = `${n.namespace}:${n.type}:${n.subtype}`;
    if (n.subtype === 'remote') continue;
    byApi.set(api, [...(byApi.get(api) ?? []), n.name]);
  }
  const known = GROUPS.map(([api]) => api);
  const order = [...GROUPS, ...[...byApi.keys()].filter((api) => !known.includes(api)).sort().map((api): [string, string] => [api, api])];
  activeBase = null;
  cards = [];
  const groups = $('groups');
  groups.replaceChildren();
  for (const [api, label] of order) {
    const list = (byApi.get(api) ?? []).sort();
    if (list.length === 0) continue;
    const grid = el('div', { class: 'grid' });
    for (const name of list) {
      const c = makeCard(r, api, name);
      cards.push(c);
      grid.append(c.node);
    }
    groups.append(el('section', { class: 'group', 'data-api': api },
      el('h2', {}, label, el('span', { class: 'count', text: String(list.length) })), grid));
  }
  state.resources = cards.map((c) => c.name);
  const components = names.filter((n) => n.type === 'component').length;
  $('summary').textContent = `${names.length} resources · ${components} components · ${names.length - components} services`;
}

// -- connection -------------------------------------------------------------------------------------

const setStatus = (status: Status, text?: string): void => {
  state.status = status;
  const pill = $('status');
  pill.dataset.state = status;
  $('status-text').textContent = text ?? status;
  ($('stop-all') as HTMLButtonElement).disabled = status !== 'connected';
};

let disconnectedSince: number | null = null;

async function connect(): Promise<void> {
  setStatus(robot ? 'reconnecting' : 'connecting', robot ? 'reconnecting…' : 'connecting…');
  try {
    const r = await createRobotClient({
      host: location.host,
      signalingAddress: location.origin,
      iceServers: [],
      dialTimeout: 10000,
    });
    robot = r;
    state.connects += 1;
    r.on(MachineConnectionEvent.DISCONNECTED, () => {
      if (robot !== r) return;
      disconnectedSince ??= performance.now();
      setStatus('reconnecting', 'connection lost · reconnecting…');
      banner('Lost the connection to the robot; reconnecting…', 'error', true);
    });
    r.on(MachineConnectionEvent.CONNECTED, () => {
      if (robot !== r || state.status === 'connected') return;
      disconnectedSince = null;
      setStatus('connected', 'connected');
      clearBanner();
      void render(r).catch((e) => banner(`Listing resources failed: ${errorText(e)}`));
    });
    state.transport = r.peerConnection ? 'WebRTC' : 'gRPC-web';
    $('transport').textContent = state.transport;
    disconnectedSince = null;
    await render(r);
    setStatus('connected', 'connected');
    clearBanner();
  } catch (error) {
    setStatus('disconnected', 'not connected');
    banner(`Cannot connect to the robot at ${location.host}: ${errorText(error)} — retrying in ${RETRY_MS / 1000} s`, 'error', true);
    window.setTimeout(() => { void connect(); }, RETRY_MS);
  }
}

async function stopAll(): Promise<void> {
  if (!robot) return;
  try {
    await robot.stopAll();
    for (const c of cards) c.stopped?.();
    banner('Stopped every component.', 'info');
  } catch (error) {
    banner(`Stop all failed: ${errorText(error)}`);
  }
}

let lastRtt = 0;
let rttBusy = false;
async function measureRtt(): Promise<void> {
  if (!robot || rttBusy) return;
  rttBusy = true;
  try {
    const t0 = performance.now();
    await robot.getOperations();
    state.rttMs = Math.round((performance.now() - t0) * 10) / 10;
    $('rtt').textContent = `${state.rttMs.toFixed(1)} ms`;
  } catch {
    $('rtt').textContent = '—';
  } finally {
    rttBusy = false;
  }
}

function tick(): void {
  const r = robot;
  if (!r) return;
  if (state.status !== 'connected') {
    // The SDK reconnects on its own; if it has not managed for a while, start over.
    if (disconnectedSince !== null && performance.now() - disconnectedSince > GIVE_UP_RECONNECT_MS) {
      disconnectedSince = null;
      void r.disconnect().catch(() => undefined);
      void connect();
    }
    return;
  }
  const now = performance.now();
  if (now - lastRtt >= RTT_MS) { lastRtt = now; void measureRtt(); }
  for (const c of cards) {
    if (!c.refresh || c.busy || (c.lastRefresh !== undefined && now - c.lastRefresh < (c.periodMs ?? POLL_MS))) continue;
    c.busy = true;
    c.lastRefresh = now;
    void c.refresh().finally(() => { c.busy = false; });
  }
}

$('robot-host').textContent = location.host;
$('stop-all').addEventListener('click', () => { void stopAll(); });
window.setInterval(tick, 100);
void connect();
