/**
 * Composition root: builds every service from the config, a database and a clock, and wires
 * the HTTP routes. Tests call {@link buildApp} with a fresh database and a fake clock.
 */
import { ChangeFeed } from './platform/change-feed.ts';
import { readFileSync } from 'node:fs';
import type { Config } from './config.ts';
import { ActorStore } from './platform/actors.ts';
import { AuditLog } from './platform/audit.ts';
import { type Clock, systemClock } from './platform/clock.ts';
import type { Database, Queryable } from './platform/db.ts';
import { safeErrorForLog } from './platform/errors.ts';
import { type App, createEdge } from './platform/http.ts';
import { type ConsumerDefinition, OutboxConsumer, OutboxRunner } from './platform/outbox.ts';
import { platformRoutes } from './platform/platform.routes.ts';
import { KeyStore } from './pki/key-store.ts';
import { loadMasterKey } from './pki/master-key.ts';
import {
  MY_NUMBER_KEY_LABEL,
  MyNumberGenerator,
  NumberingService,
} from './numbering/numbering.service.ts';
import { numberingRoutes } from './numbering/numbering.routes.ts';
import { identityRecordRoutes, registryRoutes } from './registry/registry.routes.ts';
import { RegistryService } from './registry/registry.service.ts';
import { RegistryStore } from './registry/registry.store.ts';
import { ResidentCodePool } from './registry/resident-codes.ts';
import { ErrorNoticeService, errorNoticeRoutes } from './registry/error-notices.ts';
import { supplementRoutes } from './registry/supplement.routes.ts';
import { CaService } from './jpki/ca.ts';
import { CrlPublisher } from './jpki/crl-publisher.ts';
import { IssuanceService } from './jpki/issuance.ts';
import { type JpkiServices, jpkiRoutes } from './jpki/jpki.routes.ts';
import { OcspResponderService } from './jpki/ocsp-responder.ts';
import { PartitionNames } from './jpki/partitions.ts';
import { RegistryRevocation } from './jpki/registry-revocation.ts';
import { RevocationService } from './jpki/revocation.ts';
import { Pkcs11Token } from './pki/pkcs11.ts';
import type { AuditActor } from './platform/audit.ts';
import { SupplementService, SupplementStore } from './registry/supplement.service.ts';
import { ChallengeService } from './jpki/holder-proof.ts';
import { residentRoutes } from './residents/residents.routes.ts';
import { reportRoutes } from './reports/reports.routes.ts';
import { provisionRoutes } from './registry/provision.routes.ts';
import { ProvisionService } from './registry/provision.service.ts';
import { ReportService } from './reports/reports.service.ts';
import { ProvisionLedger } from './verifiers/provisions.ts';
import { VerifierService } from './verifiers/verifiers.service.ts';
import { verifierRoutes } from './verifiers/verifiers.routes.ts';
import { CertifiedBasicFourService } from './jpki/certified-basic-four.ts';
import { ConsentService } from './jpki/consent.ts';
import { DesignationService } from './jpki/designation.ts';
import { LinkedSerialService } from './jpki/linked-serials.ts';
import {
  type VerifierServicesDeps,
  verifierServicesRoutes,
} from './jpki/verifier-services.routes.ts';

export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

export interface Services {
  config: Config;
  db: Database;
  clock: Clock;
  actors: ActorStore;
  audit: AuditLog;
  /** Change epochs: keeps in-memory answers (OCSP, tokens) in step with the database. */
  changes: ChangeFeed;
  outbox: OutboxRunner;
  /** The agency's key store; the master key is read on first use. */
  keys: () => KeyStore;
  residentCodes: ResidentCodePool;
  numbering: NumberingService;
  registry: RegistryService;
  supplement: SupplementService;
  errorNotices: ErrorNoticeService;
  jpki: JpkiServices;
  /** 署名検証者等 / 利用者証明検証者: registration, credentials, standing. */
  verifiers: VerifierService;
  /** Provision counts per verifier (OCSP/CRL buffered, flushed every second and on close). */
  provisions: ProvisionLedger;
  /** 本人同意, certified basic-4, linked serials, designation tokens (第18条第3項–, 第38条の3). */
  jpkiVerifierServices: VerifierServicesDeps;
  /** Single-use challenges a certificate holder signs (resident login, consent). */
  challenges: ChallengeService;
  /** Provision reports and migration statistics, computed from the logs. */
  reports: ReportService;
  /** 本人確認情報の提供 to national agencies, for registered legal purposes. */
  provision: ProvisionService;
  /** Releases what the services hold outside the database (the HSM session). */
  close: () => Promise<void>;
}

/**
 * How often a serving process polls the change epochs: the longest a revocation or a revoked
 * token made by another process can go unseen by this one's in-memory answers.
 */
const CHANGE_POLL_MS = 50;

/** Scheduled JPKI work runs as this actor in the audit log. */
export const SCHEDULER_ACTOR: AuditActor = { id: null, type: 'system', name: 'scheduler' };

export interface BuildOptions {
  config: Config;
  db: Database;
  clock?: Clock;
  /** Extra outbox consumers (tests); contexts register theirs here as they arrive. */
  consumers?: readonly ConsumerDefinition[];
}

type Log = (level: 'warn' | 'error', msg: string, fields: Record<string, unknown>) => void;

export function buildServices(options: BuildOptions, log: Log = () => undefined): Services {
  const clock = options.clock ?? systemClock;
  const { db, config } = options;
  // 誤りに関する通報: runs the identity-record detectors on resident.changed by default.
  const errorNotices = new ErrorNoticeService(clock, new RegistryStore());
  const audit = new AuditLog(clock);
  // Polled by a serving process (buildApp) so its in-memory answers follow every change.
  const changes = new ChangeFeed(db, CHANGE_POLL_MS, (err) =>
    log('error', 'change epochs not polled; retrying', { err: safeErrorForLog(err) }),
  );
  const revocations = new RevocationService(clock, audit, config.jpki.retentionYears);
  // 異動等失効情報: JPKI revokes what a registry change voids (and the mobile cascade).
  const registryRevocation = new RegistryRevocation(clock, revocations);
  const consumers = [
    errorNotices.consumer(),
    registryRevocation.consumer(),
    ...(options.consumers ?? []),
  ].map((def) => new OutboxConsumer(db, clock, def, { maxAttempts: 8, log }));
  let keyStore: KeyStore | null = null;
  let hsm: Pkcs11Token | null = null;
  const keys = (): KeyStore => {
    if (!keyStore) {
      if (config.pkcs11) hsm = Pkcs11Token.open(config.pkcs11);
      keyStore = new KeyStore(loadMasterKey(config.masterKey), clock, hsm ? { hsm } : {});
    }
    return keyStore;
  };
  let generator: MyNumberGenerator | null = null;
  // Read through the caller's transaction: PGlite has one connection, so a read outside the
  // open transaction would wait for it forever.
  const myNumberGenerator = async (q: Queryable): Promise<MyNumberGenerator> =>
    (generator ??= new MyNumberGenerator(
      await keys().secretKey(q, MY_NUMBER_KEY_LABEL),
      MY_NUMBER_KEY_LABEL,
    ));
  const residentCodes = new ResidentCodePool(clock, {
    refillTo: config.residentCodePoolRefill,
    maxPerRequest: 1000,
  });
  const numbering = new NumberingService(clock, myNumberGenerator);
  const registry = new RegistryService(clock, new RegistryStore(), residentCodes, numbering, audit);
  const cas = new CaService(clock, keys, audit, config.jpki, config.pkcs11 ? 'pkcs11' : 'software');
  const partitions = new PartitionNames();
  const crls = new CrlPublisher(clock, config, cas, partitions, audit);
  const issuance = new IssuanceService(
    clock,
    config,
    cas,
    registry,
    revocations,
    partitions,
    audit,
    // The first certificate in a partition gets its CRL at once, not at the next daily run.
    async (c) => {
      await crls.publish(db, SCHEDULER_ACTOR, {
        kinds: [c.kind],
        generation: c.generation,
        partitions: [c.municipalityCode],
      });
    },
  );
  const ocsp = new OcspResponderService(clock, config, cas, keys, changes, revocations);
  const actors = new ActorStore(clock, changes);
  const provisions = new ProvisionLedger(clock, db, (err) =>
    log('error', 'provision counts not flushed; retrying', { err: safeErrorForLog(err) }),
  );
  const verifiers = new VerifierService(clock, audit, actors);
  const jpkiVerifierServices: VerifierServicesDeps = {
    consents: new ConsentService(clock, audit),
    certifiedBasicFour: new CertifiedBasicFourService(
      clock,
      audit,
      registry,
      verifiers,
      provisions,
    ),
    linkedSerials: new LinkedSerialService(clock, audit, verifiers, provisions),
    designations: new DesignationService(clock, audit, verifiers, provisions),
  };
  return {
    config,
    db,
    clock,
    keys,
    residentCodes,
    numbering,
    registry,
    supplement: new SupplementService(
      clock,
      new RegistryStore(),
      new SupplementStore(),
      errorNotices,
      audit,
    ),
    errorNotices,
    jpki: { cas, issuance, revocations, crls, ocsp, registryRevocation },
    verifiers,
    provisions,
    jpkiVerifierServices,
    challenges: new ChallengeService(clock),
    reports: new ReportService(),
    provision: new ProvisionService(registry, new RegistryStore(), audit),
    close: async () => {
      await hsm?.close();
    },
    actors,
    audit,
    changes,
    outbox: new OutboxRunner(consumers, config.outboxIdleMs, (err) =>
      log('error', 'outbox runner error', { err: safeErrorForLog(err) }),
    ),
  };
}

export async function buildApp(options: BuildOptions): Promise<{ app: App; services: Services }> {
  let log: Log = () => undefined;
  const services = buildServices(options, (level, msg, fields) => log(level, msg, fields));
  const app = await createEdge({
    db: services.db,
    actors: services.actors,
    audit: services.audit,
    logLevel: options.config.logLevel,
    bodyLimitBytes: options.config.bodyLimitBytes,
    publicUrl: options.config.publicUrl,
    version: VERSION,
  });
  log = (level, msg, fields) => app.log[level](fields, msg);
  await platformRoutes(app, services);
  await registryRoutes(app, services);
  await numberingRoutes(app, services);
  await identityRecordRoutes(app, services);
  await supplementRoutes(app, services);
  await errorNoticeRoutes(app, services);
  await jpkiRoutes(app, services);
  await verifierRoutes(app, services);
  await verifierServicesRoutes(app, services);
  await residentRoutes(app, services);
  await reportRoutes(app, services);
  await provisionRoutes(app, services);
  // A registry change is delivered to its consumers (JPKI revocation) at once, not after the
  // runner's idle sleep.
  app.addHook('onResponse', async (request, reply) => {
    if (
      request.method === 'POST' &&
      reply.statusCode < 300 &&
      request.routeOptions.url?.startsWith('/v1/registry/')
    ) {
      services.outbox.wake();
    }
  });
  app.addHook('onClose', async () => {
    await services.changes.stop();
    await services.outbox.stop();
    await services.provisions.close(services.db);
    await services.close();
  });
  await app.ready();
  await services.changes.start();
  return { app, services };
}

/**
 * The JPKI housekeeping that `kiban serve` runs: publish the CRLs when the interval has passed
 * (daily by default), keep each CA generation's OCSP responder certificate fresh, and settle
 * issuance interrupted between recording and storing. Checks every `everyMs` (default hourly,
 * and once at start). Returns a function that stops it and waits for a running pass.
 */
export function startJpkiScheduler(
  services: Services,
  log: (level: 'info' | 'error', msg: string, fields: Record<string, unknown>) => void,
  everyMs = 3600e3,
): () => Promise<void> {
  const { db, jpki } = services;
  let running: Promise<void> = Promise.resolve();
  const pass = async (): Promise<void> => {
    try {
      await jpki.issuance.abandonStale(db, SCHEDULER_ACTOR);
      const lapsed = await jpki.registryRevocation.processDue(db);
      if (lapsed.length) log('info', 'scheduled revocations carried out', { count: lapsed.length });
      const now = services.clock.now();
      for (const ca of await jpki.cas.list(db)) {
        if (!ca.compromisedAt && ca.notAfter > now) {
          await jpki.cas.ensureResponder(db, ca, SCHEDULER_ACTOR);
        }
      }
      const published = await jpki.crls.publishIfDue(db, SCHEDULER_ACTOR);
      if (published)
        log('info', 'CRLs published', { crls: published.crls, entries: published.entries });
    } catch (err) {
      log('error', 'JPKI scheduled work failed', { err: safeErrorForLog(err) });
    }
  };
  running = pass();
  const timer = setInterval(() => {
    running = running.then(pass);
  }, everyMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
