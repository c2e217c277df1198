// Log-lifecycle scenarios (issue 5) for kafkajs: config_alter, retention_reset, compacted_topic.
// kafkajs_client.js passes its helpers in (h) and merges the returned scenario table.
// kafkajs has only the non-incremental AlterConfigs (a resource's whole dynamic set is
// replaced) and no consumer without a group, so every read here uses a fresh consumer group.
'use strict';

module.exports = function lifecycle(h) {
  const {
    kafka, check, Fail, NotApplicable, uniqueTopic, uniqueGroup, createTopic, withAdmin, errorType, errorCode,
    Member, waitFor, sleep, args, ConfigResourceTypes,
  } = h;
  // DescribeConfigs v1+ config sources (kafkajs ConfigSource enum).
  const SOURCES = { 1: 'DYNAMIC_TOPIC_CONFIG', 2: 'DYNAMIC_BROKER_CONFIG', 3: 'DYNAMIC_DEFAULT_BROKER_CONFIG', 4: 'STATIC_BROKER_CONFIG', 5: 'DEFAULT_CONFIG' };

  async function describe(admin, type, name) {
    const r = await admin.describeConfigs({ resources: [{ type, name }], includeSynonyms: false });
    const res = r.resources[0];
    check(res.errorCode === 0, `describeConfigs ${name} error ${res.errorCode} ${res.errorMessage}`);
    return Object.fromEntries(res.configEntries.map((c) => [c.configName, [c.configValue, SOURCES[c.configSource] || c.configSource]]));
  }

  async function alter(admin, type, name, entries) {
    try {
      await admin.alterConfigs({
        validateOnly: false,
        resources: [{ type, name, configEntries: Object.entries(entries).map(([k, v]) => ({ name: k, value: v })) }],
      });
      return null;
    } catch (e) {
      return e;
    }
  }

  // KRaft applies config changes asynchronously: poll DescribeConfigs.
  async function waitConfig(admin, topic, key, value, source) {
    const deadline = Date.now() + 10000;
    for (;;) {
      const e = (await describe(admin, ConfigResourceTypes.TOPIC, topic))[key];
      if (e && e[0] === value && e[1] === source) return;
      check(Date.now() < deadline, `${key} of ${topic} described as ${JSON.stringify(e)}, want [${value}, ${source}]`);
      await sleep(300);
    }
  }

  async function send(producer, topic, size, key = null) {
    try {
      const res = await producer.send({ topic, acks: -1, timeout: 15000, messages: [{ key, value: 'v'.repeat(size) }] });
      return [null, Number(res[0].baseOffset)];
    } catch (e) {
      return [e, null];
    }
  }

  async function expectRefused(producer, topic, size, what) {
    const deadline = Date.now() + 8000;
    for (;;) {
      const [err, off] = await send(producer, topic, size);
      if (err) {
        const type = errorType(err);
        check(type === 'MESSAGE_TOO_LARGE', `${what}: ${size}-byte record: ${err.name}: ${err.message} (type ${type}), want MESSAGE_TOO_LARGE`);
        return;
      }
      check(Date.now() < deadline, `${what}: ${size}-byte record accepted at offset ${off}`);
      await sleep(500);
    }
  }

  async function expectAccepted(producer, topic, size, what) {
    const [err] = await send(producer, topic, size);
    check(!err, `${what}: ${size}-byte record refused: ${err && err.message}`);
  }

  // A raised limit, like a lowered one, may reach the partition's leader a moment after
  // DescribeConfigs (answered by any broker of a cluster) shows it: retry the size refusal.
  async function expectAcceptedOnceRaised(producer, topic, size, what) {
    const deadline = Date.now() + 8000;
    for (;;) {
      const [err] = await send(producer, topic, size);
      if (!err || errorType(err) !== 'MESSAGE_TOO_LARGE' || Date.now() > deadline) {
        check(!err, `${what}: ${size}-byte record refused: ${err && err.message}`);
        return;
      }
      await sleep(500);
    }
  }

  async function configAlter(name) {
    const topic = uniqueTopic(name);
    const other = `${topic}-nooverride`;
    await createTopic(topic, 1);
    await createTopic(other, 1);
    const producer = kafka().producer({ idempotent: false, allowAutoTopicCreation: false, retry: { retries: 0 } });
    await producer.connect();
    try {
      return await withAdmin(async (admin) => {
        await expectAccepted(producer, topic, 8000, 'before alter');
        let err = await alter(admin, ConfigResourceTypes.TOPIC, topic, { 'max.message.bytes': '4096' });
        check(!err, `alterConfigs max.message.bytes=4096: ${err && err.message}`);
        await waitConfig(admin, topic, 'max.message.bytes', '4096', 'DYNAMIC_TOPIC_CONFIG');
        await expectRefused(producer, topic, 8000, 'max.message.bytes=4096');
        await expectAccepted(producer, topic, 1000, 'max.message.bytes=4096');
        for (const [k, bad] of [['max.message.bytes', '-5'], ['cleanup.policy', 'banana']]) {
          err = await alter(admin, ConfigResourceTypes.TOPIC, topic, { 'max.message.bytes': '4096', [k]: bad });
          check(err, `${k}=${bad} accepted`);
          check(errorType(err) === 'INVALID_CONFIG', `${k}=${bad}: ${err.message} (type ${errorType(err)}), want INVALID_CONFIG`);
        }
        const cfg = await describe(admin, ConfigResourceTypes.TOPIC, topic);
        check(cfg['max.message.bytes'][0] === '4096' && cfg['cleanup.policy'][0] === 'delete',
          `after refused alters: ${JSON.stringify([cfg['max.message.bytes'], cfg['cleanup.policy']])}`);

        // Dynamic broker config. AlterConfigs replaces the resource's whole dynamic set, so the
        // current per-broker dynamic configs are described first and kept.
        // kafkajs refuses an empty resource name client-side ("Invalid resource name"), so the
        // per-broker resource is altered instead (source DYNAMIC_BROKER_CONFIG), on every broker:
        // in a cluster (compat/run.py --cluster N) the topic's leader and the broker answering
        // the describe may be any of them.
        const brokers = (await admin.describeCluster()).brokers.map((b) => String(b.nodeId)).sort();
        const before = {};
        for (const broker of brokers) {
          before[broker] = Object.fromEntries(Object.entries(await describe(admin, ConfigResourceTypes.BROKER, broker))
            .filter(([, [v, s]]) => s === 'DYNAMIC_BROKER_CONFIG' && v !== null).map(([k, [v]]) => [k, v]));
        }
        const restoreErrors = [];
        try {
          for (const broker of brokers) {
            err = await alter(admin, ConfigResourceTypes.BROKER, broker, { ...before[broker], 'message.max.bytes': '6000' });
            check(!err, `alterConfigs BROKER ${broker} message.max.bytes=6000: ${err && err.message}`);
          }
          await waitConfig(admin, other, 'max.message.bytes', '6000', 'DYNAMIC_BROKER_CONFIG');
          await expectRefused(producer, other, 9000, `broker(s) ${brokers} message.max.bytes=6000`);
          await expectAccepted(producer, other, 3000, `broker(s) ${brokers} message.max.bytes=6000`);
        } finally {
          for (const broker of brokers) {
            const e = await alter(admin, ConfigResourceTypes.BROKER, broker, before[broker]);
            if (e) restoreErrors.push(`${broker}: ${e.message}`);
          }
        }
        check(restoreErrors.length === 0, `restoring the broker configs ${JSON.stringify(before)}: ${restoreErrors}`);
        await waitConfig(admin, other, 'max.message.bytes', '1048588', 'DEFAULT_CONFIG');
        await expectAcceptedOnceRaised(producer, other, 9000, 'cluster default restored');
        return {
          detail: 'topic max.message.bytes=4096 (DYNAMIC_TOPIC_CONFIG, AlterConfigs): 8000 B refused, 1000 B ok; -5 / banana -> '
            + `INVALID_CONFIG; broker(s) ${brokers} message.max.bytes=6000 (DYNAMIC_BROKER_CONFIG on a topic without override): `
            + `9000 B refused, 3000 B ok; restored (kept ${JSON.stringify(before)}) -> DEFAULT_CONFIG 1048588 (cluster default "" not `
            + 'addressable: kafkajs refuses an empty resource name)',
        };
      });
    } finally {
      await producer.disconnect().catch(() => {});
    }
  }

  async function watermarks(admin, topic) {
    const p = (await admin.fetchTopicOffsets(topic)).find((x) => x.partition === 0);
    return [Number(p.low), Number(p.high)];
  }

  // A consumer (fresh group, so no committed offset) seeking to 0, below the log start:
  // the first record's offset after kafkajs' reset (fromBeginning: earliest, else latest).
  async function firstRecord(topic, fromBeginning) {
    const c = kafka().consumer({ groupId: uniqueGroup('retention_reset'), sessionTimeout: 10000, heartbeatInterval: 1000, maxWaitTimeInMs: 200 });
    let first = null;
    let crashed = null;
    c.on(c.events.CRASH, (e) => { crashed = e.payload.error; });
    await c.connect();
    try {
      await c.subscribe({ topics: [topic], fromBeginning });
      await c.run({ autoCommit: false, eachMessage: async ({ message }) => { if (first === null) first = Number(message.offset); } });
      c.seek({ topic, partition: 0, offset: '0' });
      const deadline = Date.now() + 15000;
      while (first === null && !crashed && Date.now() < deadline) await sleep(50);
      check(!crashed, `consumer crashed: ${crashed && crashed.message}`);
      check(first !== null, `${fromBeginning ? 'earliest' : 'latest'} consumer sought to 0 read nothing in 15s`);
      return first;
    } finally {
      await c.disconnect().catch(() => {});
    }
  }

  async function retentionReset(name) {
    if (!args.groups) throw new NotApplicable('kafkajs consumes only through consumer groups, which this broker does not advertise');
    const topic = uniqueTopic(name);
    await createTopic(topic, 1, [{ name: 'segment.ms', value: '300' }, { name: 'retention.ms', value: '2000' }]);
    const producer = kafka().producer({ idempotent: false, allowAutoTopicCreation: false });
    await producer.connect();
    const member = await new Member(uniqueGroup(name), topic).start();
    let stop = false;
    let sent = 0;
    let perr = null;
    const loop = (async () => {
      while (!stop) {
        try {
          await producer.send({ topic, acks: -1, messages: [{ key: 'k', value: `r-${sent}${'x'.repeat(200)}` }] });
        } catch (e) { perr = perr || e; }
        sent += 1;
        await sleep(20);
      }
    })();
    try {
      return await withAdmin(async (admin) => {
        const lows = [];
        const deadline = Date.now() + 20000;
        while (Date.now() < deadline && lows.length < 3) {
          await sleep(500);
          const [low] = await watermarks(admin, topic);
          if (low > 0 && (!lows.length || low > lows[lows.length - 1])) lows.push(low);
        }
        check(lows.length >= 3, 'log start offset did not advance 3 times while producing (segment.ms=300, retention.ms=2000) '
          + `within 20s: low watermarks seen ${JSON.stringify(lows)}, ${sent} records sent`);
        check(!perr, `produce error: ${perr && perr.message}`);
        const [lowBefore] = await watermarks(admin, topic);
        const early = await firstRecord(topic, true);
        const [lowAfter] = await watermarks(admin, topic);
        check(lowBefore <= early && early <= lowAfter && early > 0,
          `earliest reset from 0: first offset ${early}, want the log start (between ${lowBefore} and ${lowAfter})`);
        const [, hwBefore] = await watermarks(admin, topic);
        const late = await firstRecord(topic, false);
        const [, hwAfter] = await watermarks(admin, topic);
        check(hwBefore <= late && late <= hwAfter,
          `latest reset from 0: first offset ${late}, want the end (between ${hwBefore} and ${hwAfter}; log start then ${lowAfter})`);
        stop = true;
        await loop;

        const [, hw] = await watermarks(admin, topic);
        await waitFor([member], () => (member.next[0] || 0) >= hw, 10000, `group member at the end offset ${hw}`);
        const offs = (member.got[0] || []).map((r) => r.offset);
        for (let i = 1; i < offs.length; i++) check(offs[i - 1] < offs[i], 'group member\'s offsets not strictly increasing');

        // DeleteRecords moves the low watermark to the requested offset.
        const dtopic = `${topic}-delete`;
        await createTopic(dtopic, 1);
        await producer.send({ topic: dtopic, acks: -1, messages: Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, value: `v${i}`, partition: 0 })) });
        // kafkajs looks the leader up in its metadata cache: load the new topic first.
        await watermarks(admin, dtopic);
        await admin.deleteTopicRecords({ topic: dtopic, partitions: [{ partition: 0, offset: '7' }] });
        const [lo, hi] = await watermarks(admin, dtopic);
        check(lo === 7 && hi === 20, `after deleteTopicRecords(7): watermarks (${lo}, ${hi}), want (7, 20)`);
        const first = await firstRecord(dtopic, true);
        check(first === 7, `earliest consumer after deleteTopicRecords(7) starts at ${first}`);
        return {
          detail: `log start advanced ${JSON.stringify(lows)} while producing; sought to 0: earliest -> ${early} (log start `
            + `${lowBefore}..${lowAfter}), latest -> ${late} (end ${hwBefore}..${hwAfter}); group member read ${offs.length} records in `
            + 'order to the end; deleteTopicRecords(7) -> low watermark 7 (kafkajs returns no low watermark: checked by ListOffsets), '
            + 'earliest consumer starts at 7',
        };
      });
    } finally {
      stop = true;
      await loop.catch(() => {});
      await member.close().catch(() => {});
      await producer.disconnect().catch(() => {});
    }
  }

  async function readFromStart(admin, topic) {
    const [, end] = await watermarks(admin, topic);
    const m = await new Member(uniqueGroup('compacted_read'), topic).start();
    try {
      await waitFor([m], () => (m.next[0] || 0) >= end, 15000, `read to the end offset ${end}`);
      return (m.got[0] || []).map((r) => [r.offset, r.key, r.value]);
    } finally {
      await m.close().catch(() => {});
    }
  }

  async function compactedTopic(name) {
    if (!args.groups) throw new NotApplicable('kafkajs consumes only through consumer groups, which this broker does not advertise');
    const topic = uniqueTopic(name);
    await createTopic(topic, 1, [{ name: 'cleanup.policy', value: 'compact' }, { name: 'segment.ms', value: '100' },
      { name: 'min.cleanable.dirty.ratio', value: '0.01' }, { name: 'delete.retention.ms', value: '100' }]);
    const producer = kafka().producer({ idempotent: false, allowAutoTopicCreation: false, retry: { retries: 0 } });
    await producer.connect();
    try {
      return await withAdmin(async (admin) => {
        const keys = [0, 1, 2, 3, 4].map((i) => `key-${i}`);
        const last = {};
        const msgs = [];
        for (let i = 0; i < 200; i++) {
          const k = keys[i % 5];
          last[k] = `${k}-update-${i}`;
          msgs.push({ key: k, value: last[k] });
        }
        msgs.push({ key: keys[4], value: null });
        // One record per send: the base offset of each is its offset (kept to check no renumbering).
        const delivered = {};
        for (let i = 0; i < msgs.length; i += 50) {
          const chunk = msgs.slice(i, i + 50);
          const res = await producer.send({ topic, acks: -1, messages: chunk });
          const base = Number(res[0].baseOffset);
          chunk.forEach((m, j) => { if (m.value !== null) delivered[m.value] = base + j; });
        }
        const [kerr, koff] = await send(producer, topic, 10, null);
        check(kerr, `keyless record accepted at offset ${koff} on a compacted topic`);
        const ktype = errorType(kerr);
        check(ktype === 'INVALID_RECORD' || errorCode(kerr) === 87, `keyless record: ${kerr.message} (type ${ktype}), want INVALID_RECORD (87)`);

        let seen = [];
        const deadline = Date.now() + 30000;
        for (;;) {
          const [rerr] = await send(producer, topic, 10, 'roll');
          check(!rerr, `roll record refused: ${rerr && rerr.message}`);
          seen = await readFromStart(admin, topic);
          const counts = {};
          for (const [, k] of seen) counts[k] = (counts[k] || 0) + 1;
          if (keys.slice(0, 4).every((k) => (counts[k] || 0) <= 2) && seen.every(([, k, v]) => k !== keys[4] || v === null)) break;
          check(Date.now() < deadline, `not compacted within 30s: ${seen.length} records remain, per key ${JSON.stringify(counts)}`);
          await sleep(1000);
        }
        for (let i = 1; i < seen.length; i++) check(seen[i - 1][0] < seen[i][0], 'offsets not strictly increasing');
        for (const [o, k, v] of seen) {
          if (k === 'roll' || v === null) continue;
          check(delivered[v] === o, `record ${v} at offset ${o}, produced at ${delivered[v]}`);
        }
        for (const k of keys.slice(0, 4)) {
          const vals = seen.filter(([, kk]) => kk === k).map(([, , v]) => v);
          check(vals.length && vals[vals.length - 1] === last[k], `key ${k}: values ${JSON.stringify(vals)}, last produced ${last[k]}`);
        }
        const tomb = seen.some(([, k]) => k === keys[4]);
        return {
          detail: `201 records over 5 keys + tombstone; keyless -> ${ktype}; compacted to ${seen.length} records (key-0..3 keep their last `
            + `value at the original offset, key-4 ${tomb ? 'tombstone only' : 'gone entirely'}), offsets increasing`,
        };
      });
    } finally {
      await producer.disconnect().catch(() => {});
    }
  }

  if (typeof Fail !== 'function') throw new Error('helpers missing');
  return { config_alter: configAlter, retention_reset: retentionReset, compacted_topic: compactedTopic };
};
