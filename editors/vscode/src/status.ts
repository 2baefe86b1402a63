// `dcopilot/status` -> what the status-bar item shows. Pure, so every state is unit-tested.
import { Status } from './protocol';

export interface StatusView {
  text: string;
  tooltip: string;
  error: boolean; // drawn with the error background
}

export function statusView(status: Status, enabled: boolean): StatusView {
  const where = [status.model, status.device].filter(Boolean).join(' on ');
  const detail = status.message ? `: ${status.message}` : '';
  switch (status.state) {
    case 'starting':
      return { text: '$(loading~spin) dcopilot', tooltip: 'dcopilot: starting the server', error: false };
    case 'loading': {
      const pct = typeof status.progress === 'number' ? ` ${Math.round(Math.min(1, Math.max(0, status.progress)) * 100)}%` : '';
      return { text: `$(loading~spin) dcopilot${pct}`, tooltip: `dcopilot: loading the model${where ? ` (${where})` : ''}${detail}`, error: false };
    }
    case 'busy':
      return { text: '$(sync~spin) dcopilot', tooltip: `dcopilot: working${detail}`, error: false };
    case 'error':
      return { text: '$(error) dcopilot', tooltip: `dcopilot error${detail || ': unknown'}`, error: true };
    case 'stopped':
      return { text: '$(debug-stop) dcopilot', tooltip: `dcopilot: server stopped${detail}`, error: Boolean(status.message) };
    case 'ready':
    default:
      return {
        text: enabled ? '$(sparkle) dcopilot' : '$(circle-slash) dcopilot',
        tooltip: `dcopilot: ${enabled ? 'ready' : 'disabled here'}${where ? ` (${where})` : ''}${detail}`,
        error: false,
      };
  }
}
