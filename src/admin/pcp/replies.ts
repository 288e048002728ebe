import { setTimeout as delay } from 'node:timers/promises';
import { epochSeconds, fixed6 } from '../format';
import type { AdminCommands } from '../commands';
import { AdminError } from '../errors';
import type { AdminHost, ShutdownMode } from '../host';
import { configItems } from '../pool-status';
import { healthRow, nodeRows, poolRows, STATUS_CODE } from '../views';
import { PcpReply, PcpRequest } from './codes';
import { Writer } from '../../protocol/writer';
import { PcpPacket, pcpFields, pcpPacket } from './packet';
import { watchdogInfo } from '../watchdog-info';
import { PcpClient, PcpFailure } from './client';

const RAND_MAX = 2147483647;
const MODES: Record<string, ShutdownMode> = { s: 'smart', f: 'fast', i: 'immediate' };
const done = (type: number): Buffer => pcpPacket(type, ['CommandComplete']);

/** The integer a request carries as text ('-1' for all nodes, '0' for all processes). */
function intArg(p: PcpPacket): number {
  const text = pcpFields(p.payload)[0] ?? '';
  return /^\s*-?\d+\s*$/.test(text) ? Number.parseInt(text, 10) : Number.NaN;
}

/**
 * The reply to one authenticated request (pgpool.md c.5), in pgpool 4.3's byte format: NodeInfo
 * has 4.3's 13 fields (4.4 inserted one in the middle; Debian bookworm's clients are 4.3).
 * Null: no reply (pgpool's legacy 'F').
 */
export async function pcpReply(p: PcpPacket, h: AdminHost, cmd: AdminCommands, notice: (message: string) => void): Promise<Buffer | null> {
  if (FOR_THE_LEADER.has(p.type)) {
    const to = h.leaderPcp();
    if (to === 'none') throw new AdminError('PCP: no watchdog leader', 'node commands are carried out by the leader of the group, and it has none now: try again');
    if (to) return toTheLeader(to, p, h, notice);
  }
  switch (p.type) {
    case PcpRequest.NodeCount:
      return pcpPacket(PcpReply.NodeCount, ['CommandComplete', String(h.cluster.topology.nodes.length)]);
    case PcpRequest.NodeInfo:
      return nodeInfo(h, intArg(p));
    case PcpRequest.HealthCheckStats: {
      const id = intArg(p);
      if (!(id >= 0 && id < h.cluster.topology.nodes.length)) throw new AdminError('informing health check stats info failed', `invalid node ID ${id}`);
      return pcpPacket(PcpReply.HealthCheckStats, ['CommandComplete', ...healthRow(h, id)]);
    }
    case PcpRequest.ProcCount: {
      const ids = h.sessions().map((s) => String(s.id));
      return pcpPacket(PcpReply.ProcCount, ['CommandComplete', String(ids.length), ...ids]);
    }
    case PcpRequest.ProcInfo:
      return procInfo(h, intArg(p));
    case PcpRequest.PoolStatus:
      return poolStatus(h);
    case PcpRequest.WatchdogInfo:
      return pcpPacket(PcpReply.WatchdogInfo, ['CommandComplete', JSON.stringify(watchdogInfo(h.watchdog(), intArg(p), h.config.enable_consensus_with_half_votes))]);
    case PcpRequest.AttachNode:
      cmd.attach(intArg(p));
      return done(PcpReply.Attached);
    case PcpRequest.DetachNode:
    case PcpRequest.DetachNodeGraceful:
      await cmd.detach(intArg(p), p.type === PcpRequest.DetachNodeGraceful);
      return done(PcpReply.Detached);
    case PcpRequest.PromoteNode:
    case PcpRequest.PromoteNodeGraceful: {
      // "<id> \0<option>": the id up to the space, then 's' (switchover) or 'n' after the NUL.
      const text = p.payload.toString('latin1');
      const id = Number.parseInt(text.split(' ')[0] ?? '', 10);
      const option = text[text.indexOf('\0') + 1];
      if (option === 's' && h.watchdog()) {
        await groupSwitchover(h, cmd, id, p.type === PcpRequest.PromoteNodeGraceful, notice);
        return done(PcpReply.Detached);
      }
      await cmd.promote(id, option === 's', p.type === PcpRequest.PromoteNodeGraceful);
      return done(PcpReply.Detached);
    }
    case PcpRequest.RecoveryNode:
      // pgpool's client skips the progress notices; sluicectl prints them.
      await cmd.recovery(intArg(p), notice, h.watchdog() ? (deadline) => holdEveryMember(h, deadline, notice) : undefined);
      return done(PcpReply.Attached);
    case PcpRequest.RecoveryHold:
      if (p.payload[0] === 0x68) await cmd.holdForGroupRecovery(Number(p.payload.toString('latin1', 1)));
      else cmd.releaseGroupRecovery();
      return done(PcpReply.RecoveryHeld);
    case PcpRequest.StopLocal:
    case PcpRequest.StopCluster: {
      const m = p.payload.toString('latin1', 0, 1);
      const mode = MODES[m];
      if (!mode) throw new AdminError('PCP: error while processing shutdown request', `invalid shutdown mode "${m}"`);
      // pgpool's scope c ('t'): every instance of the group stops; each says so before it does,
      // and this one stops even when another could not be asked (the error names it).
      cmd.checkStop();
      try {
        if (p.type === PcpRequest.StopCluster) await toEveryMember(h, PcpRequest.StopLocal, p.payload, notice);
      } finally {
        cmd.stop(mode);
      }
      return done(PcpReply.Stopped);
    }
    case PcpRequest.ReloadConfig:
      try {
        cmd.reload();
      } catch (err) {
        throw new AdminError('PCP: reload config failed', (err as Error).message);
      }
      // pgpool's scope: 'c' reloads every instance of the group (each its own file), 'l' this one.
      if (p.payload[0] === SCOPE_CLUSTER) await toEveryMember(h, p.type, Buffer.from('l'), notice);
      return done(PcpReply.Reloaded);
    case PcpRequest.SetBackendParameter: {
      const [name = ''] = pcpFields(p.payload);
      if (name !== 'client_min_messages') throw new AdminError('PCP: set configuration parameter failed', `invalid parameter "${name}"`);
      return done(PcpReply.ParameterSet);
    }
    case PcpRequest.LogRotate:
      // Sluice logs to stdout (pino): nothing to reopen.
      return done(PcpReply.LogRotated);
    case PcpRequest.InvalidateQueryCache:
      throw new AdminError('query cache is not enabled');
    case PcpRequest.StopRecovery:
      return null;
    case PcpRequest.Pause:
      // In a group, every instance pauses (the others are asked with 'l': this one alone).
      if (p.payload[1] !== SCOPE_LOCAL) await toEveryMember(h, p.type, Buffer.from([p.payload[0] ?? 0x6e, SCOPE_LOCAL]), notice, memberWaitMs(h));
      // Digits after the scope: paused for another instance's switchover, for at most that long.
      await cmd.pause(p.payload[0] === 0x77, p.payload.length > 2 ? Number(p.payload.toString('latin1', 2)) : undefined);
      return done(PcpReply.Paused);
    case PcpRequest.Resume:
      // After a group switchover the leader names the new primary: writes go there from the first statement.
      try {
        if (p.payload.length > 1) await untilPrimary(h, Number(p.payload.toString('latin1', 1)));
      } finally {
        // Held sessions are never left held: without the view in time, the error says so.
        cmd.resume();
      }
      if (p.payload[0] !== SCOPE_LOCAL) await toEveryMember(h, p.type, Buffer.from([SCOPE_LOCAL]), notice);
      return done(PcpReply.Resumed);
    default:
      throw new AdminError('PCP processing request', `unknown PCP packet type "${String.fromCharCode(p.type)}"`, true);
  }
}

/** Node commands, which the group's leader alone carries out (its hooks run once, for all). */
const FOR_THE_LEADER = new Set<number>([
  PcpRequest.AttachNode,
  PcpRequest.DetachNode,
  PcpRequest.DetachNodeGraceful,
  PcpRequest.PromoteNode,
  PcpRequest.PromoteNodeGraceful,
  PcpRequest.RecoveryNode,
]);

/**
 * Carries a node command to the leader over its PCP port, as this instance's first [[pcp_user]]
 * (the stored md5 is what the salted answer is made from), and answers with the leader's replies
 * once it is done; the others take the change from the leader's view within a loop.
 */
async function toTheLeader(to: { host: string; port: number }, p: PcpPacket, h: AdminHost, notice: (m: string) => void): Promise<Buffer> {
  const replies = await requestTo(to, p.type, p.payload, h, notice, 'the watchdog leader');
  return Buffer.concat(replies.map((r) => new Writer(r.payload.length + 5).begin(r.type).bytes(r.payload).end().finish()));
}

/**
 * A switchover with several instances, run by the leader: checked first, then every other
 * instance is paused (its sessions held at transaction boundaries, so none writes to the old
 * primary after the catch-up), the leader switches over, and as soon as the new primary serves
 * it publishes its view and resumes each instance once that one routes writes to the new primary
 * (follow_primary_command goes on meanwhile). A member never told resumes on its own after
 * `expires`; the switchover's own error is the one answered.
 */
async function groupSwitchover(h: AdminHost, cmd: AdminCommands, id: number, graceful: boolean, notice: (m: string) => void): Promise<void> {
  cmd.checkPromote(id, true);
  const c = h.config;
  const expires = 2 * c.failover_hold_timeout * 1000 + c.hook_timeout * 1000 + VIEW_WAIT_MS;
  // Settles to its error (or null) at once: it runs while follow_primary_command still does.
  const resumeAll = (payload: string): Promise<unknown> =>
    toEveryMember(h, PcpRequest.Resume, Buffer.from(payload), notice, VIEW_WAIT_MS + MEMBER_WAIT_MS).then(
      () => null,
      (err: unknown) => err,
    );
  let resumed: Promise<unknown> | null = null;
  let failure: unknown = null;
  try {
    await toEveryMember(h, PcpRequest.Pause, Buffer.from(`wl${expires}`), notice, memberWaitMs(h));
    await cmd.promote(id, true, graceful, () => {
      resumed = h.groupRound().then(() => resumeAll(`l${h.cluster.topology.primaryId ?? ''}`));
    });
  } catch (err) {
    failure = err;
  }
  // Every instance is resumed whatever happened (the switchover's own error is the one answered).
  const resumeFailure = await (resumed ?? resumeAll('l'));
  if (failure ?? resumeFailure) throw failure ?? resumeFailure;
}

/** How long another instance may take to answer a request that drains its sessions (pause). */
const memberWaitMs = (h: AdminHost) => h.config.failover_hold_timeout * 1000 + MEMBER_WAIT_MS;
/** How long another instance may take to answer any other request. */
const MEMBER_WAIT_MS = 10_000;

/** Online recovery's second stage in a group: every other instance holds its new sessions until none is open. */
async function holdEveryMember(h: AdminHost, deadline: number, notice: (m: string) => void): Promise<() => void> {
  const release = () =>
    void toEveryMember(h, PcpRequest.RecoveryHold, Buffer.from('r'), notice).catch((err: AdminError) => h.log.warn({ err: err.message, detail: err.detail }, 'online recovery: not every instance was released'));
  const ms = Math.max(1, deadline - Date.now());
  try {
    await toEveryMember(h, PcpRequest.RecoveryHold, Buffer.from(`h${ms}`), notice, ms + MEMBER_WAIT_MS);
  } catch (err) {
    release();
    throw err;
  }
  return release;
}

/** How long an instance told to resume on a new primary waits for the leader's view of it. */
const VIEW_WAIT_MS = 10_000;
const VIEW_POLL_MS = 100;

/** Watchdog rounds until this instance's view has `id` as the primary (the leader published it). */
async function untilPrimary(h: AdminHost, id: number): Promise<void> {
  const deadline = Date.now() + VIEW_WAIT_MS;
  for (let round = 0; h.cluster.topology.primaryId !== id; round++) {
    if (Date.now() >= deadline) throw new AdminError('PCP: resume after a switchover', `the group's view did not name node ${id} the primary in ${VIEW_WAIT_MS / 1000} s`);
    if (round > 0) await delay(VIEW_POLL_MS);
    // A round on a slow etcd may take several request timeouts: the deadline bounds the wait.
    await Promise.race([h.groupRound(), delay(Math.max(0, deadline - Date.now()))]);
  }
}

/** pgpool's scope bytes: the whole group, or this instance alone. */
const SCOPE_CLUSTER = 0x63; // c
const SCOPE_LOCAL = 0x6c; // l

/** The same request to every other instance of the group (none when alone); answers when all did. */
async function toEveryMember(h: AdminHost, type: number, payload: Buffer, notice: (m: string) => void, timeoutMs = MEMBER_WAIT_MS): Promise<void> {
  const v = h.watchdog();
  if (!v) return;
  const failed: string[] = [];
  await Promise.all(
    v.members
      .filter((m) => m.name !== v.self.name)
      .map((m) => requestTo({ host: m.host, port: m.pcpPort }, type, payload, h, notice, m.name, timeoutMs).catch((err: Error) => failed.push(`${m.name}: ${err.message}`))),
  );
  if (failed.length > 0) throw new AdminError('PCP: not carried out on every instance', failed.join('; '));
}

/** One request to another instance's PCP port, as this instance's first [[pcp_user]] (its stored md5 makes the salted answer). */
async function requestTo(to: { host: string; port: number }, type: number, payload: Buffer, h: AdminHost, notice: (m: string) => void, who: string, timeoutMs?: number) {
  const u = h.config.pcp_user[0];
  if (!u) throw new AdminError(`PCP: could not reach ${who}`, 'no [[pcp_user]] to carry the command with');
  let c: PcpClient | null = null;
  try {
    c = await PcpClient.open({ host: to.host, port: to.port, user: u.name, password: '', passwordMd5: u.md5, notice, ...(timeoutMs !== undefined ? { timeoutMs } : {}) });
    return await c.request(type, payload);
  } catch (err) {
    if (err instanceof PcpFailure) throw new AdminError(err.message, err.detail);
    throw new AdminError(`PCP: could not reach ${who}`, `${to.host}:${to.port}: ${(err as Error).message}`);
  } finally {
    c?.close();
  }
}

async function nodeInfo(h: AdminHost, id: number): Promise<Buffer> {
  const count = h.cluster.topology.nodes.length;
  if (id !== -1 && !(id >= 0 && id < count)) throw new AdminError('informing node info failed', `invalid node ID : ${id}`);
  const rows = await nodeRows(h, id === -1 ? undefined : [id]);
  const out = [pcpPacket(PcpReply.NodeInfo, ['ArraySize', String(rows.length)])];
  for (const r of rows) {
    out.push(
      pcpPacket(PcpReply.NodeInfo, [
        'NodeInfo',
        r.host,
        String(r.port),
        String(STATUS_CODE[r.status]),
        // pgpool's quarantine flag (pcp_node_info then says "quarantine").
        r.quarantined ? '1' : '0',
        r.pgStatus,
        fixed6(r.weight * RAND_MAX),
        r.role === 'primary' ? '2' : '3',
        r.pgRole,
        String(r.delayBytes),
        r.replicationState,
        r.replicationSyncState,
        epochSeconds(r.lastStatusChange),
      ]),
    );
  }
  out.push(done(PcpReply.NodeInfo));
  return Buffer.concat(out);
}

function procInfo(h: AdminHost, pid: number): Buffer {
  const all = h.sessions();
  const sessions = pid === 0 ? all : all.filter((s) => s.id === pid);
  if (pid !== 0 && sessions.length === 0) throw new AdminError('informing process info failed', `invalid process ID : ${Number.isNaN(pid) ? '' : pid}`);
  const rows = poolRows(h, sessions);
  const out = [pcpPacket(PcpReply.ProcInfo, ['ArraySize', String(rows.length)])];
  for (const r of rows) out.push(pcpPacket(PcpReply.ProcInfo, ['ProcessInfo', ...r]));
  out.push(done(PcpReply.ProcInfo));
  return Buffer.concat(out);
}

function poolStatus(h: AdminHost): Buffer {
  const items = configItems(h.config, {
    status: (i) => h.cluster.topology.nodes[i]!.status,
    delay: (i) => h.cluster.replication.info[i]!.delayBytes,
  });
  // The count is the one binary integer of the protocol.
  const out: Buffer[] = [new Writer(32).begin(PcpReply.PoolStatus).cstring('ArraySize').int32(items.length).end().finish()];
  for (const it of items) out.push(pcpPacket(PcpReply.PoolStatus, ['ProcessConfig', it.name, it.value, it.description]));
  out.push(done(PcpReply.PoolStatus));
  return Buffer.concat(out);
}
