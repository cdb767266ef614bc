/**
 * Synthetic residents for demos, load tests and `kiban seed`: realistic-looking people whose
 * records pass every rule of registry.rules.ts, generated deterministically.
 *
 * Person `i` of a population is a pure function of (seed, asOf, i, master data): its own
 * PRNG is keyed by the seed and the index, so any person can be produced without the ones
 * before it (a resumed seed run starts at `done` in O(1)) and the same seed always gives the
 * same people.
 *
 * - Names: an embedded table of common family names and, per sex and birth cohort, given
 *   names, each with its reading. 氏名 is family + U+3000 (ideographic space) + given; the 振り仮名 likewise. A few
 *   entries use variant kanji (渡邉, 山﨑 — a CJK compatibility ideograph — and 𠮷田, outside
 *   the BMP) and kana-only given names, as real registers do.
 * - Birth dates: the age pyramid of Japan in 5-year bands, a uniform day inside the band, never
 *   before {@link EARLIEST_SYNTHETIC_BIRTH_DATE} nor after `asOf`.
 * - Municipality: every register-keeping local government (city, town, village, special ward,
 *   designated-city ward), weighted by the average population of its kind.
 * - Address: prefecture + (郡) + municipality or designated-city ward + a 町名 and
 *   N丁目N番N号 (towns and villages also 大字…N番地), sometimes a building and room.
 *
 * No real person is described: names, dates and addresses are drawn independently.
 */
import { createHash } from 'node:crypto';
import type { LocalGovernment, LocalGovernmentKind } from '../platform/local-governments-csv.ts';
import { isCalendarDate, type RegistryNotification, type Sex } from './registry.rules.ts';

/** The earliest birth date generated (the oldest residents are about 100). */
export const EARLIEST_SYNTHETIC_BIRTH_DATE = '1925-01-01';

/** 全角スペース: between family and given name, and before a building name. */
const SPACE = '\u3000';

/** The seed used when none is given. */
export const DEFAULT_SYNTHETIC_SEED = 'kiban';

export interface SyntheticPerson {
  /** Position in the population (0-based). */
  index: number;
  /** The register-keeping local government the person lives in. */
  municipalityCode: string;
  name: string;
  nameKana: string;
  birthDate: string;
  sex: Sex;
  address: string;
}

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

/** [kanji, reading] */
type Reading = readonly [string, string];

/**
 * Common family names, most frequent first (the order sets the weight), each with its most
 * common reading. The variant spellings at the end are rare on purpose.
 */
export const FAMILY_NAMES: readonly Reading[] = [
  ['佐藤', 'サトウ'],
  ['鈴木', 'スズキ'],
  ['高橋', 'タカハシ'],
  ['田中', 'タナカ'],
  ['伊藤', 'イトウ'],
  ['渡辺', 'ワタナベ'],
  ['山本', 'ヤマモト'],
  ['中村', 'ナカムラ'],
  ['小林', 'コバヤシ'],
  ['加藤', 'カトウ'],
  ['吉田', 'ヨシダ'],
  ['山田', 'ヤマダ'],
  ['佐々木', 'ササキ'],
  ['山口', 'ヤマグチ'],
  ['松本', 'マツモト'],
  ['井上', 'イノウエ'],
  ['木村', 'キムラ'],
  ['林', 'ハヤシ'],
  ['斎藤', 'サイトウ'],
  ['清水', 'シミズ'],
  ['山崎', 'ヤマザキ'],
  ['森', 'モリ'],
  ['池田', 'イケダ'],
  ['橋本', 'ハシモト'],
  ['阿部', 'アベ'],
  ['石川', 'イシカワ'],
  ['山下', 'ヤマシタ'],
  ['中島', 'ナカジマ'],
  ['石井', 'イシイ'],
  ['小川', 'オガワ'],
  ['前田', 'マエダ'],
  ['岡田', 'オカダ'],
  ['長谷川', 'ハセガワ'],
  ['藤田', 'フジタ'],
  ['後藤', 'ゴトウ'],
  ['近藤', 'コンドウ'],
  ['村上', 'ムラカミ'],
  ['遠藤', 'エンドウ'],
  ['青木', 'アオキ'],
  ['坂本', 'サカモト'],
  ['斉藤', 'サイトウ'],
  ['福田', 'フクダ'],
  ['太田', 'オオタ'],
  ['西村', 'ニシムラ'],
  ['藤井', 'フジイ'],
  ['金子', 'カネコ'],
  ['岡本', 'オカモト'],
  ['藤原', 'フジワラ'],
  ['中野', 'ナカノ'],
  ['三浦', 'ミウラ'],
  ['原田', 'ハラダ'],
  ['中川', 'ナカガワ'],
  ['松田', 'マツダ'],
  ['竹内', 'タケウチ'],
  ['小野', 'オノ'],
  ['田村', 'タムラ'],
  ['中山', 'ナカヤマ'],
  ['和田', 'ワダ'],
  ['石田', 'イシダ'],
  ['森田', 'モリタ'],
  ['上田', 'ウエダ'],
  ['原', 'ハラ'],
  ['内田', 'ウチダ'],
  ['柴田', 'シバタ'],
  ['酒井', 'サカイ'],
  ['宮崎', 'ミヤザキ'],
  ['横山', 'ヨコヤマ'],
  ['高木', 'タカギ'],
  ['安藤', 'アンドウ'],
  ['宮本', 'ミヤモト'],
  ['大野', 'オオノ'],
  ['小島', 'コジマ'],
  ['谷口', 'タニグチ'],
  ['今井', 'イマイ'],
  ['工藤', 'クドウ'],
  ['高田', 'タカダ'],
  ['増田', 'マスダ'],
  ['丸山', 'マルヤマ'],
  ['杉山', 'スギヤマ'],
  ['村田', 'ムラタ'],
  ['大塚', 'オオツカ'],
  ['新井', 'アライ'],
  ['小山', 'コヤマ'],
  ['平野', 'ヒラノ'],
  ['藤本', 'フジモト'],
  ['河野', 'コウノ'],
  ['上野', 'ウエノ'],
  ['野口', 'ノグチ'],
  ['武田', 'タケダ'],
  ['松井', 'マツイ'],
  ['千葉', 'チバ'],
  ['岩崎', 'イワサキ'],
  ['菅原', 'スガワラ'],
  ['木下', 'キノシタ'],
  ['久保', 'クボ'],
  ['佐野', 'サノ'],
  ['野村', 'ノムラ'],
  ['松尾', 'マツオ'],
  ['市川', 'イチカワ'],
  ['菊地', 'キクチ'],
  ['杉本', 'スギモト'],
  ['古川', 'フルカワ'],
  ['大西', 'オオニシ'],
  ['島田', 'シマダ'],
  ['水野', 'ミズノ'],
  ['桜井', 'サクライ'],
  ['高野', 'タカノ'],
  ['渡部', 'ワタナベ'],
  ['吉川', 'ヨシカワ'],
  ['山内', 'ヤマウチ'],
  ['西田', 'ニシダ'],
  ['飯田', 'イイダ'],
  ['菊池', 'キクチ'],
  ['西川', 'ニシカワ'],
  ['小松', 'コマツ'],
  ['北村', 'キタムラ'],
  ['安田', 'ヤスダ'],
  ['五十嵐', 'イガラシ'],
  ['川口', 'カワグチ'],
  ['平田', 'ヒラタ'],
  ['関', 'セキ'],
  ['中田', 'ナカタ'],
  ['久保田', 'クボタ'],
  ['服部', 'ハットリ'],
  ['東', 'ヒガシ'],
  ['岩田', 'イワタ'],
  ['土屋', 'ツチヤ'],
  ['川崎', 'カワサキ'],
  ['福島', 'フクシマ'],
  ['本田', 'ホンダ'],
  ['比嘉', 'ヒガ'],
  ['金城', 'キンジョウ'],
  // Variant spellings kept in the 戸籍 and so in the 住民票.
  ['渡邉', 'ワタナベ'],
  ['渡邊', 'ワタナベ'],
  ['齋藤', 'サイトウ'],
  ['髙橋', 'タカハシ'],
  ['山﨑', 'ヤマザキ'],
  ['𠮷田', 'ヨシダ'],
];

type Cohort = 'before1955' | 'from1955' | 'from1990';

/** Given names by sex and birth cohort, each with its reading. */
export const GIVEN_NAMES: Readonly<Record<Sex, Readonly<Record<Cohort, readonly Reading[]>>>> = {
  male: {
    before1955: [
      ['清', 'キヨシ'],
      ['茂', 'シゲル'],
      ['博', 'ヒロシ'],
      ['勇', 'イサム'],
      ['実', 'ミノル'],
      ['進', 'ススム'],
      ['正', 'タダシ'],
      ['武', 'タケシ'],
      ['明', 'アキラ'],
      ['勝', 'マサル'],
      ['三郎', 'サブロウ'],
      ['正雄', 'マサオ'],
      ['弘', 'ヒロシ'],
      ['和夫', 'カズオ'],
      ['隆', 'タカシ'],
      ['豊', 'ユタカ'],
      ['修', 'オサム'],
      ['稔', 'ミノル'],
      ['幸雄', 'ユキオ'],
      ['一郎', 'イチロウ'],
      ['次郎', 'ジロウ'],
      ['健二', 'ケンジ'],
      ['秀夫', 'ヒデオ'],
      ['義男', 'ヨシオ'],
      ['光男', 'ミツオ'],
      ['忠', 'タダシ'],
      ['俊夫', 'トシオ'],
      ['昭二', 'ショウジ'],
      ['茂雄', 'シゲオ'],
      ['保', 'タモツ'],
      ['登', 'ノボル'],
      ['功', 'イサオ'],
      ['栄', 'サカエ'],
      ['四郎', 'シロウ'],
      ['久雄', 'ヒサオ'],
      ['文雄', 'フミオ'],
    ],
    from1955: [
      ['誠', 'マコト'],
      ['浩', 'ヒロシ'],
      ['大輔', 'ダイスケ'],
      ['健一', 'ケンイチ'],
      ['直樹', 'ナオキ'],
      ['哲也', 'テツヤ'],
      ['剛', 'ツヨシ'],
      ['達也', 'タツヤ'],
      ['和也', 'カズヤ'],
      ['隆之', 'タカユキ'],
      ['健太', 'ケンタ'],
      ['拓也', 'タクヤ'],
      ['翔太', 'ショウタ'],
      ['聡', 'サトシ'],
      ['学', 'マナブ'],
      ['洋平', 'ヨウヘイ'],
      ['雄一', 'ユウイチ'],
      ['英樹', 'ヒデキ'],
      ['徹', 'トオル'],
      ['正樹', 'マサキ'],
      ['智之', 'トモユキ'],
      ['健', 'ケン'],
      ['亮', 'リョウ'],
      ['大介', 'ダイスケ'],
      ['伸也', 'シンヤ'],
      ['康弘', 'ヤスヒロ'],
      ['浩二', 'コウジ'],
      ['裕太', 'ユウタ'],
      ['雅之', 'マサユキ'],
      ['浩之', 'ヒロユキ'],
      ['宏', 'ヒロシ'],
      ['慎一', 'シンイチ'],
      ['和彦', 'カズヒコ'],
      ['貴之', 'タカユキ'],
      ['淳', 'ジュン'],
      ['竜也', 'タツヤ'],
    ],
    from1990: [
      ['蓮', 'レン'],
      ['陽翔', 'ハルト'],
      ['湊', 'ミナト'],
      ['悠真', 'ユウマ'],
      ['大翔', 'ヒロト'],
      ['蒼', 'アオイ'],
      ['樹', 'イツキ'],
      ['悠人', 'ユウト'],
      ['颯太', 'ソウタ'],
      ['陸', 'リク'],
      ['陽太', 'ヨウタ'],
      ['結翔', 'ユイト'],
      ['朝陽', 'アサヒ'],
      ['律', 'リツ'],
      ['翼', 'ツバサ'],
      ['大和', 'ヤマト'],
      ['颯', 'ハヤテ'],
      ['海斗', 'カイト'],
      ['翔', 'ショウ'],
      ['拓海', 'タクミ'],
      ['優斗', 'ユウト'],
      ['健人', 'ケント'],
      ['駿', 'シュン'],
      ['大輝', 'ダイキ'],
      ['陽向', 'ヒナタ'],
      ['奏太', 'ソウタ'],
      ['蒼空', 'ソラ'],
      ['悠斗', 'ユウト'],
      ['隼人', 'ハヤト'],
      ['蒼真', 'ソウマ'],
      ['碧', 'アオイ'],
      ['晴', 'ハル'],
      ['新', 'アラタ'],
      ['岳', 'ガク'],
      ['怜', 'レイ'],
      ['一颯', 'イブキ'],
    ],
  },
  female: {
    before1955: [
      ['和子', 'カズコ'],
      ['幸子', 'サチコ'],
      ['節子', 'セツコ'],
      ['洋子', 'ヨウコ'],
      ['弘子', 'ヒロコ'],
      ['京子', 'キョウコ'],
      ['恵子', 'ケイコ'],
      ['美智子', 'ミチコ'],
      ['久子', 'ヒサコ'],
      ['悦子', 'エツコ'],
      ['光子', 'ミツコ'],
      ['文子', 'フミコ'],
      ['清子', 'キヨコ'],
      ['静子', 'シズコ'],
      ['千代子', 'チヨコ'],
      ['信子', 'ノブコ'],
      ['澄子', 'スミコ'],
      ['春子', 'ハルコ'],
      ['君子', 'キミコ'],
      ['照子', 'テルコ'],
      ['正子', 'マサコ'],
      ['美代子', 'ミヨコ'],
      ['敏子', 'トシコ'],
      ['孝子', 'タカコ'],
      ['良子', 'ヨシコ'],
      ['秀子', 'ヒデコ'],
      ['房子', 'フサコ'],
      ['登美子', 'トミコ'],
      ['富子', 'トミコ'],
      ['米子', 'ヨネコ'],
      ['静江', 'シズエ'],
      ['芳子', 'ヨシコ'],
      ['貞子', 'サダコ'],
      ['ハナ', 'ハナ'],
      ['トメ', 'トメ'],
      ['キヨ', 'キヨ'],
    ],
    from1955: [
      ['裕子', 'ユウコ'],
      ['真由美', 'マユミ'],
      ['明美', 'アケミ'],
      ['直美', 'ナオミ'],
      ['智子', 'トモコ'],
      ['由美子', 'ユミコ'],
      ['久美子', 'クミコ'],
      ['恵美', 'エミ'],
      ['陽子', 'ヨウコ'],
      ['純子', 'ジュンコ'],
      ['理恵', 'リエ'],
      ['香織', 'カオリ'],
      ['愛', 'アイ'],
      ['彩', 'アヤ'],
      ['美穂', 'ミホ'],
      ['麻衣', 'マイ'],
      ['恵', 'メグミ'],
      ['由香', 'ユカ'],
      ['舞', 'マイ'],
      ['沙織', 'サオリ'],
      ['千尋', 'チヒロ'],
      ['奈々', 'ナナ'],
      ['美紀', 'ミキ'],
      ['亜希子', 'アキコ'],
      ['瞳', 'ヒトミ'],
      ['真理子', 'マリコ'],
      ['敦子', 'アツコ'],
      ['薫', 'カオル'],
      ['美香', 'ミカ'],
      ['明子', 'アキコ'],
      ['由紀', 'ユキ'],
      ['恵理', 'エリ'],
      ['知美', 'トモミ'],
      ['加奈子', 'カナコ'],
      ['さゆり', 'サユリ'],
      ['みどり', 'ミドリ'],
    ],
    from1990: [
      ['陽葵', 'ヒマリ'],
      ['凛', 'リン'],
      ['結菜', 'ユイナ'],
      ['芽依', 'メイ'],
      ['葵', 'アオイ'],
      ['結愛', 'ユア'],
      ['紬', 'ツムギ'],
      ['澪', 'ミオ'],
      ['莉子', 'リコ'],
      ['美咲', 'ミサキ'],
      ['杏', 'アン'],
      ['咲良', 'サクラ'],
      ['さくら', 'サクラ'],
      ['楓', 'カエデ'],
      ['結衣', 'ユイ'],
      ['花', 'ハナ'],
      ['陽菜', 'ヒナ'],
      ['心春', 'コハル'],
      ['美桜', 'ミオ'],
      ['彩花', 'アヤカ'],
      ['七海', 'ナナミ'],
      ['優奈', 'ユウナ'],
      ['萌', 'モエ'],
      ['美羽', 'ミウ'],
      ['愛莉', 'アイリ'],
      ['ひなた', 'ヒナタ'],
      ['詩', 'ウタ'],
      ['琴音', 'コトネ'],
      ['真央', 'マオ'],
      ['遥', 'ハルカ'],
      ['紗希', 'サキ'],
      ['咲', 'サキ'],
      ['芽生', 'メイ'],
      ['柚希', 'ユズキ'],
      ['日葵', 'ヒマリ'],
      ['彩乃', 'アヤノ'],
    ],
  },
};

const cohortOf = (birthYear: number): Cohort =>
  birthYear < 1955 ? 'before1955' : birthYear < 1990 ? 'from1955' : 'from1990';

// ---------------------------------------------------------------------------------------------
// Ages and sexes
// ---------------------------------------------------------------------------------------------

/**
 * Japan's population by 5-year age band, in thousands (総務省統計局 人口推計, 1 October 2023,
 * rounded). Index k is ages 5k … 5k+4; the last band is 100 and over.
 */
export const AGE_BAND_POPULATION: readonly number[] = [
  4245, 4819, 5239, 5464, 6192, 6358, 6421, 7183, 7948, 9300, 9353, 8073, 7412, 7454, 9152, 7254,
  5926, 3949, 2025, 575, 92,
];

/** Share of women by age: about even until 60, rising with age (longer life expectancy). */
function femaleShare(age: number): number {
  if (age < 60) return 0.49;
  if (age < 80) return 0.52;
  if (age < 90) return 0.6;
  return 0.75;
}

// ---------------------------------------------------------------------------------------------
// Places
// ---------------------------------------------------------------------------------------------

type RegisterKind = Extract<
  LocalGovernmentKind,
  'city' | 'town' | 'village' | 'specialWard' | 'designatedCityWard'
>;

/**
 * Average population of each register-keeping kind, in thousands (2020 census, rounded): the
 * 23 special wards hold about 9.7 million, the 175 designated-city wards about 27.5 million,
 * the other cities about 75 million, towns 11 million and villages 0.8 million.
 */
export const KIND_WEIGHT: Readonly<Record<RegisterKind, number>> = {
  specialWard: 420,
  designatedCityWard: 160,
  city: 97,
  town: 15,
  village: 4.5,
};

const isRegisterKind = (kind: LocalGovernmentKind): kind is RegisterKind => kind in KIND_WEIGHT;

/** Common 町名 (with or without 町) used in front of 丁目. */
const TOWN_AREAS: readonly string[] = [
  '本町',
  '栄町',
  '緑町',
  '旭町',
  '幸町',
  '中央',
  '東町',
  '西町',
  '南町',
  '北町',
  '新町',
  '元町',
  '大手町',
  '桜町',
  '松原',
  '若葉',
  '青葉',
  '日吉町',
  '花園',
  '寿町',
  '宮前',
  '駅前',
  '末広町',
  '曙町',
  '柳町',
  '錦町',
  '昭和町',
  '平和町',
  '富士見',
  '城南',
  '川端町',
  '泉町',
  '港町',
  '山手',
  '宮下',
  '高砂町',
  '住吉町',
  '八幡町',
  '天神',
  '朝日町',
];

/** 大字 names of rural areas (towns and villages). */
const RURAL_AREAS: readonly string[] = [
  '上野',
  '中山',
  '原',
  '新田',
  '高田',
  '下村',
  '大久保',
  '小川',
  '宮原',
  '石原',
  '本郷',
  '清水',
  '柏木',
  '長沢',
  '平沢',
  '大塚',
];

const BUILDINGS: readonly string[] = [
  'コーポ',
  'ハイツ',
  'メゾン',
  'レジデンス',
  'パークハウス',
  'グランドヒルズ',
  'サンライズマンション',
  'ハイム',
  'シティタワー',
  'ロイヤルコート',
];

interface Place {
  code: string;
  /** 都道府県 + (郡) + 市区町村 (a designated-city ward's name already holds its city). */
  prefix: string;
  kind: RegisterKind;
}

// ---------------------------------------------------------------------------------------------
// Randomness
// ---------------------------------------------------------------------------------------------

/** MurmurHash3's 32-bit finaliser: a good avalanche for deriving PRNG state. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** sfc32 (Chris Doty-Humphrey's Small Fast Counting PRNG): floats in [0, 1). */
function sfc32(a: number, b: number, c: number, d: number): () => number {
  return () => {
    a |= 0;
    b |= 0;
    c |= 0;
    d |= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}

/** A uniform integer in [lo, hi]. */
const intIn = (rng: () => number, lo: number, hi: number): number =>
  lo + Math.floor(rng() * (hi - lo + 1));

const pick = <T>(rng: () => number, items: readonly T[]): T => {
  const item = items[Math.floor(rng() * items.length)];
  if (item === undefined) throw new Error('pick from an empty list');
  return item;
};

/** Cumulative weights for O(log n) weighted choice. */
class WeightedChoice<T> {
  private readonly cumulative: Float64Array;
  private readonly total: number;
  constructor(
    private readonly items: readonly T[],
    weight: (item: T, index: number) => number,
  ) {
    if (items.length === 0) throw new Error('weighted choice over an empty list');
    this.cumulative = new Float64Array(items.length);
    let sum = 0;
    items.forEach((item, i) => {
      sum += weight(item, i);
      this.cumulative[i] = sum;
    });
    this.total = sum;
  }
  pick(rng: () => number): T {
    const x = rng() * this.total;
    let lo = 0;
    let hi = this.items.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.cumulative[mid] ?? 0) > x) hi = mid;
      else lo = mid + 1;
    }
    return this.items[lo] as T;
  }
}

// ---------------------------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------------------------

const DAY_MS = 86_400_000;
const toDay = (date: string): number => Date.parse(`${date}T00:00:00Z`) / DAY_MS;
const fromDay = (day: number): string => new Date(day * DAY_MS).toISOString().slice(0, 10);

/** The day `years` years before `date` (29 February → 28 February). */
function yearsBefore(date: string, years: number): number {
  const y = Number(date.slice(0, 4)) - years;
  const m = Number(date.slice(5, 7));
  let d = Number(date.slice(8, 10));
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  if (m === 2 && d === 29 && !leap) d = 28;
  return Date.UTC(y, m - 1, d) / DAY_MS;
}

// ---------------------------------------------------------------------------------------------
// The population
// ---------------------------------------------------------------------------------------------

export interface PopulationOptions {
  /** Any text; the same seed gives the same people. */
  seed: string;
  /** The reference date (YYYY-MM-DD, Japan): nobody is born after it, ages are counted to it. */
  asOf: string;
  /** The local-government master (prefectures are needed for their names). */
  localGovernments: readonly LocalGovernment[];
}

const FAMILY_CHOICE = new WeightedChoice(FAMILY_NAMES, (_, rank) =>
  // Zipf-like: the most frequent names are several times the 100th; variants are rare.
  rank >= FAMILY_NAMES.length - 6 ? 0.002 : 1 / (rank + 8),
);
const AGE_BAND_CHOICE = new WeightedChoice(
  AGE_BAND_POPULATION.map((_, band) => band),
  (band) => AGE_BAND_POPULATION[band] ?? 0,
);

export class SyntheticPopulation {
  readonly seed: string;
  readonly asOf: string;
  private readonly key: Uint32Array;
  private readonly places: WeightedChoice<Place>;
  private readonly earliestDay: number;
  private readonly asOfDay: number;

  constructor(options: PopulationOptions) {
    if (!isCalendarDate(options.asOf) || options.asOf < EARLIEST_SYNTHETIC_BIRTH_DATE) {
      throw new RangeError(`asOf must be a date from ${EARLIEST_SYNTHETIC_BIRTH_DATE}`);
    }
    this.seed = options.seed;
    this.asOf = options.asOf;
    const digest = createHash('sha256').update(`kiban/synthetic/v1\0${options.seed}`).digest();
    this.key = new Uint32Array(4);
    for (let i = 0; i < 4; i++) this.key[i] = digest.readUInt32BE(i * 4);
    this.earliestDay = toDay(EARLIEST_SYNTHETIC_BIRTH_DATE);
    this.asOfDay = toDay(options.asOf);

    const prefectures = new Map(
      options.localGovernments
        .filter((g) => g.kind === 'prefecture')
        .map((g) => [g.prefectureCode, g.name]),
    );
    const places: Place[] = [];
    for (const g of [...options.localGovernments].sort((a, b) => a.code.localeCompare(b.code))) {
      if (!isRegisterKind(g.kind)) continue;
      const prefecture = prefectures.get(g.prefectureCode);
      if (!prefecture) throw new Error(`no prefecture ${g.prefectureCode} for ${g.code}`);
      places.push({
        code: g.code,
        prefix: `${prefecture}${g.district ?? ''}${g.name}`,
        kind: g.kind,
      });
    }
    this.places = new WeightedChoice(places, (p) => KIND_WEIGHT[p.kind]);
  }

  /** Person `index` (0-based): a pure function of the seed, asOf, index and master data. */
  person(index: number): SyntheticPerson {
    if (!Number.isSafeInteger(index) || index < 0) throw new RangeError('index must be ≥ 0');
    const rng = this.rngFor(index);

    const band = AGE_BAND_CHOICE.pick(rng);
    const youngest = band * 5;
    const last = band === AGE_BAND_POPULATION.length - 1;
    // Born after asOf − (oldest + 1) years and no later than asOf − youngest years.
    const latest = Math.min(yearsBefore(this.asOf, youngest), this.asOfDay);
    const earliest = Math.max(
      yearsBefore(this.asOf, last ? 106 : youngest + 5) + 1,
      this.earliestDay,
    );
    const birthDay =
      latest < earliest ? intIn(rng, this.earliestDay, this.asOfDay) : intIn(rng, earliest, latest);
    const birthDate = fromDay(birthDay);
    const age = Math.floor((this.asOfDay - birthDay) / 365.2425);
    const sex: Sex = rng() < femaleShare(age) ? 'female' : 'male';

    const [family, familyKana] = FAMILY_CHOICE.pick(rng);
    const [given, givenKana] = pick(rng, GIVEN_NAMES[sex][cohortOf(Number(birthDate.slice(0, 4)))]);

    const place = this.places.pick(rng);
    return {
      index,
      municipalityCode: place.code,
      name: family + SPACE + given,
      nameKana: familyKana + SPACE + givenKana,
      birthDate,
      sex,
      address: place.prefix + this.street(rng, place.kind),
    };
  }

  /** The part of the address after the municipality. */
  private street(rng: () => number, kind: RegisterKind): string {
    const rural = kind === 'town' || kind === 'village';
    if (rural && rng() < 0.5) return `大字${pick(rng, RURAL_AREAS)}${intIn(rng, 1, 3999)}番地`;
    // Low 丁目 numbers are more common than high ones.
    const chome = Math.min(intIn(rng, 1, 6), intIn(rng, 1, 6));
    let s = `${pick(rng, TOWN_AREAS)}${chome}丁目${intIn(rng, 1, 30)}番${intIn(rng, 1, 25)}号`;
    const flats = kind === 'specialWard' || kind === 'designatedCityWard' ? 0.4 : 0.15;
    if (rng() < flats) {
      s += `${SPACE}${pick(rng, BUILDINGS)}${pick(rng, TOWN_AREAS)}${intIn(rng, 1, 15)}0${intIn(rng, 1, 9)}号室`;
    }
    return s;
  }

  /** A PRNG for one person, keyed by the seed and the index (sfc32, warmed up). */
  private rngFor(index: number): () => number {
    const lo = index >>> 0;
    const hi = Math.floor(index / 4294967296) >>> 0;
    const [k0 = 0, k1 = 0, k2 = 0, k3 = 0] = this.key;
    const a = fmix32(k0 ^ lo);
    const b = fmix32(k1 ^ hi ^ a);
    const c = fmix32(k2 ^ lo ^ Math.imul(b, 0x9e3779b9));
    const d = fmix32(k3 ^ hi ^ c);
    const rng = sfc32(a, b, c, d);
    for (let i = 0; i < 12; i++) rng();
    return rng;
  }
}

/**
 * The 職権記載 (officialEntry) notification that enters `person` into their municipality's
 * register at the national server, with the code and number the municipality drew for them.
 */
export function officialEntryNotification(
  person: SyntheticPerson,
  issued: { residentCode: string; myNumber: string; sequence: number; changeDate: string },
): RegistryNotification {
  return {
    municipalityCode: person.municipalityCode,
    sequence: issued.sequence,
    changeReason: 'officialEntry',
    changeDate: issued.changeDate,
    record: {
      residentCode: issued.residentCode,
      myNumber: issued.myNumber,
      name: person.name,
      nameKana: person.nameKana,
      birthDate: person.birthDate,
      sex: person.sex,
      address: person.address,
    },
  };
}
