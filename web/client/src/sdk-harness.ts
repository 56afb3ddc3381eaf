// Test entry for the browser tests (tests/browser/): the pieces of the unmodified
// @viamrobotics/sdk that the tests drive with playwright's page.evaluate, on `window.viam`,
// plus `window.peerbotHarness` with small helpers that turn SDK results into plain JSON.
//
// No test logic lives here: the scenarios are in tests/browser/run_in_netns.py, so a test
// and what it asserts can be read in one place.
import {
  BaseClient,
  CameraClient,
  createRobotClient,
  MotorClient,
  RobotClient,
  SensorClient,
  StreamClient,
  version,
} from '@viamrobotics/sdk';

declare global {
  interface Window {
    viam: typeof viam;
    peerbotHarness: typeof peerbotHarness;
  }
}

const viam = {
  BaseClient,
  CameraClient,
  createRobotClient,
  MotorClient,
  RobotClient,
  SensorClient,
  StreamClient,
  version,
};

/** What a rejected SDK call carried: connect-es ConnectError fields when present. */
interface ErrorInfo {
  name: string;
  message: string;
  code: number | null;
  rawMessage: string | null;
  text: string;
}

const describeError = (error: unknown): ErrorInfo => {
  if (error instanceof Error) {
    const fields = error as Error & { code?: unknown; rawMessage?: unknown };
    return {
      name: error.name,
      message: error.message,
      code: typeof fields.code === 'number' ? fields.code : null,
      rawMessage: typeof fields.rawMessage === 'string' ? fields.rawMessage : null,
      text: String(error),
    };
  }
  return { name: typeof error, message: String(error), code: null, rawMessage: null, text: String(error) };
};

/** Protobuf-es messages (ResourceName, Struct values …) → plain JSON for page.evaluate. */
const toPlain = (value: unknown): unknown => JSON.parse(JSON.stringify(value, (_key, v: unknown) =>
  typeof v === 'bigint' ? v.toString() : v));

const peerbotHarness = { describeError, toPlain, ready: true };

window.viam = viam;
window.peerbotHarness = peerbotHarness;
