"""Synthetic RPG IV programs, deterministic from a `random.Random`.

`generate_program(rng, index)` returns (file name, source text). About 60% of the
programs are fixed form (H/F/D/C/P specs in their proper columns, some with
`/free` blocks or column-8 free-form calculations), the rest `**free`; a share of
the free ones embed SQL (`.sqlrpgle`). Control flow is always properly nested.

Names, numbers and keywords come from finite pools (business domains: customers,
orders, invoices, stock, suppliers, payments; legacy upper-case names such as
CUSTNO and modern camelCase ones such as customerName), so the vocabulary of the
tokenized corpus stays small. Only `rng.random`, `rng.randrange`, `rng.choice` and
`rng.shuffle` are used, on lists, so the output does not depend on the Python
version or on hash randomisation.
"""

from __future__ import annotations

import re

FIXED_SHARE = 0.6          # share of fixed-form programs
SQL_SHARE_OF_FREE = 0.2    # share of the free-form programs that embed SQL (.sqlrpgle)
MAX_NAME = 14              # every identifier fits a C-spec factor field (14 columns)


# ----------------------------------------------------------------------------------------
# Pools. A type is a tuple: ("char", n) ("varchar", n) ("packed", p, s) ("zoned", p, s)
# ("int", n) ("ind",) ("date",). kind(type) is one of num, char, ind, date.

def _t(spec):
    """'c10' -> ("char", 10); 'v50' -> varchar; 'p11.2' packed; 'z5.0' zoned; 'i10' int;
    'n' ind; 'd' date."""
    code, rest = spec[0], spec[1:]
    if code == "n":
        return ("ind",)
    if code == "d":
        return ("date",)
    if code in "pz":
        p, s = rest.split(".")
        return ("packed" if code == "p" else "zoned", int(p), int(s))
    return ({"c": "char", "v": "varchar", "i": "int"}[code], int(rest))


def _fields(text):
    """'CUSTNO c10, CRLIMIT p11.2' -> [(name, type), ...]"""
    out = []
    for item in text.split(","):
        name, spec = item.split()
        out.append((name, _t(spec)))
    return out


def kind_of(rpg_type) -> str:
    base = rpg_type[0]
    if base in ("char", "varchar"):
        return "char"
    if base in ("packed", "zoned", "int"):
        return "num"
    return base if base == "date" else "ind"


class Domain:
    def __init__(self, name, prefix, files, fields, modern, legacy, procs, subrs, messages,
                 codes, ds, display):
        self.name = name
        self.prefix = prefix
        self.files = files              # [(file, format, [key fields])]
        self.fields = _fields(fields)   # externally described file fields (legacy names)
        self.modern = _fields(modern)   # modern local variables
        self.legacy = _fields(legacy)   # legacy local variables
        self.procs = procs              # [(name, [param kinds], return kind or None)]
        self.subrs = subrs              # subroutine names (upper case)
        self.messages = messages        # texts for string literals
        self.codes = codes              # one-letter status codes
        self.ds = ds                    # (modern DS name, legacy DS name)
        self.display = display          # (display file, printer file)


DOMAINS = [
    Domain(
        "customer", "CUS",
        files=[("CUSTMAST", "CUSTREC", ["CUSTNO"]), ("CUSTMASTL1", "CUSTRECL1", ["CUSTNAME"])],
        fields="CUSTNO c10, CUSTNAME c40, CUSTADDR c40, CUSTCITY c25, CUSTST c2, CUSTZIP c10, "
               "CUSTPHONE c15, CUSTSTAT c1, CUSTTYPE c1, CRLIMIT p11.2, BALDUE p11.2, "
               "DISCPCT p5.2, SALESREP c5, LASTORDDT d",
        modern="customerId c10, customerName v50, creditLimit p11.2, balanceDue p11.2, "
               "openBalance p11.2, creditLeft p11.2, customerCount i10, isActive n, overLimit n, "
               "lastOrderDate d, customerType c1, fullAddress v100, cityName v25, "
               "phoneNumber c15, discountRate p5.2",
        legacy="WKCUST c10, WKNAME c40, WKLIMIT p11.2, WKBAL p11.2, CUSTCNT p7.0, OVERLMT n, "
               "WKADDR c80, WKDISC p5.2",
        procs=[("getCustomer", ["char"], "ind"), ("checkCredit", ["char", "num"], "ind"),
               ("updateBalance", ["char", "num"], None), ("formatAddress", ["char"], "char"),
               ("calcDiscount", ["num"], "num"), ("isValidCust", ["char"], "ind")],
        subrs=["CHKCUST", "LOADCUST", "UPDCUST", "PRTCUST", "CLRCUST"],
        messages=["Customer not found", "Credit limit exceeded", "Customer is inactive",
                  "Invalid customer number", "Customer''s balance updated", "Customer on hold",
                  "Customers processed: "],
        codes=["A", "I", "H"],
        ds=("customerInfo", "CUSTDS"),
        display=("CUSTDSP", "CUSTRPT"),
    ),
    Domain(
        "order", "ORD",
        files=[("ORDHDR", "ORDHREC", ["ORDNO"]), ("ORDDTL", "ORDDREC", ["ORDNO", "ORDLINE"])],
        fields="ORDNO c10, ORDDATE d, ORDCUST c10, ORDSTAT c1, ORDAMT p11.2, ORDTAX p9.2, "
               "SHIPDATE d, ORDLINE z5.0, ITEMNO c15, ORDQTY p7.0, UNITPRICE p9.2, "
               "LINEAMT p11.2, SHIPVIA c10",
        modern="orderNumber c10, orderDate d, orderTotal p13.2, orderStatus c1, lineCount i10, "
               "lineAmount p11.2, taxAmount p9.2, shipDate d, quantity p7.0, unitPrice p9.2, "
               "isShipped n, orderCount i10, lineNumber i10, shipMethod v10",
        legacy="WKORD c10, ORDTOT p13.2, LINECNT p5.0, WKQTY p7.0, WKPRICE p9.2, SHIPPED n, "
               "WKTAX p9.2, ORDCNT p7.0",
        procs=[("calcOrderTotal", ["char"], "num"), ("getOrderStatus", ["char"], "char"),
               ("addOrderLine", ["char", "num"], None), ("shipOrder", ["char"], "ind"),
               ("cancelOrder", ["char"], None), ("calcTax", ["num"], "num")],
        subrs=["CALCTOT", "LOADORD", "UPDORD", "PRTORD", "CHKSTAT"],
        messages=["Order not found", "Order already shipped", "Order total: ",
                  "No lines for order", "Order cancelled", "Order''s status changed",
                  "Orders read: "],
        codes=["O", "S", "C", "P"],
        ds=("orderInfo", "ORDDS"),
        display=("ORDDSP", "ORDRPT"),
    ),
    Domain(
        "invoice", "INV",
        files=[("INVHDR", "INVHREC", ["INVNO"]), ("INVDTL", "INVDREC", ["INVNO", "INVLINE"])],
        fields="INVNO c10, INVDATE d, INVCUST c10, INVAMT p11.2, INVTAX p9.2, INVPAID p11.2, "
               "DUEDATE d, INVSTAT c1, TERMS z3.0, INVLINE z5.0, INVQTY p7.0, INVPRICE p9.2",
        modern="invoiceNumber c10, invoiceDate d, invoiceTotal p13.2, amountPaid p11.2, "
               "amountDue p11.2, dueDate d, daysOverdue i10, isPaid n, invoiceCount i10, "
               "termsDays i10, lateFee p9.2, invoiceStatus c1",
        legacy="WKINV c10, INVTOT p13.2, AMTDUE p11.2, DAYSLATE p5.0, LATEFEE p9.2, PAIDFLG n, "
               "INVCNT p7.0",
        procs=[("createInvoice", ["char"], "char"), ("calcDueDate", ["date", "num"], "date"),
               ("applyPayment", ["char", "num"], None), ("calcLateFee", ["num", "num"], "num"),
               ("printInvoice", ["char"], None), ("getInvTotal", ["char"], "num")],
        subrs=["CALCDUE", "PRTINV", "LOADINV", "POSTINV", "CHKPAID"],
        messages=["Invoice not found", "Invoice is overdue", "Invoice paid in full",
                  "Amount due: ", "Invoice''s terms changed", "Invoices printed: "],
        codes=["O", "P", "V"],
        ds=("invoiceInfo", "INVDS"),
        display=("INVDSP", "INVRPT"),
    ),
    Domain(
        "stock", "STK",
        files=[("ITEMMAST", "ITEMREC", ["ITEMNO"]), ("STOCKBAL", "STKREC", ["ITEMNO", "WHSE"])],
        fields="ITEMNO c15, ITEMDESC c40, ITEMCLASS c4, UOM c3, ONHAND p9.0, ALLOCQTY p9.0, "
               "REORDPT p7.0, REORDQTY p7.0, UNITCOST p9.4, WHSE c3, BINLOC c8, LASTCNTDT d",
        modern="itemNumber c15, itemDesc v40, onHand p9.0, available p9.0, reorderPoint p7.0, "
               "reorderQty p7.0, unitCost p9.4, stockValue p13.2, warehouse c3, needsReorder n, "
               "itemCount i10, binLocation c8",
        legacy="WKITEM c15, WKONHAND p9.0, AVAILQTY p9.0, STKVAL p13.2, REORDFLG n, WKWHSE c3, "
               "ITEMCNT p7.0",
        procs=[("getStockLevel", ["char"], "num"), ("reserveStock", ["char", "num"], "ind"),
               ("adjustStock", ["char", "num"], None), ("isBelowMin", ["char"], "ind"),
               ("calcStockValue", ["num", "num"], "num"), ("getItemDesc", ["char"], "char")],
        subrs=["CHKSTOCK", "ADJSTK", "RESERVE", "PRTSTK", "CALCVAL"],
        messages=["Item not found", "Insufficient stock", "Reorder needed for item",
                  "Stock adjusted", "Item''s cost updated", "Items counted: "],
        codes=["A", "D", "X"],
        ds=("itemInfo", "ITEMDS"),
        display=("STKDSP", "STKRPT"),
    ),
    Domain(
        "supplier", "SUP",
        files=[("SUPPMAST", "SUPREC", ["SUPPNO"]), ("POHDR", "POHREC", ["PONO"])],
        fields="SUPPNO c8, SUPPNAME c40, SUPPSTAT c1, LEADDAYS z3.0, PONO c10, PODATE d, "
               "POAMT p11.2, POSTAT c1, RCVDATE d, POSUPP c8",
        modern="supplierId c8, supplierName v40, leadTimeDays i10, poNumber c10, poDate d, "
               "poTotal p11.2, receivedDate d, isApproved n, poCount i10, supplierStat c1",
        legacy="WKSUPP c8, WKPO c10, POTOT p11.2, LEADTM p3.0, APPROVED n, POCNT p7.0",
        procs=[("getSupplier", ["char"], "ind"), ("approvePo", ["char"], "ind"),
               ("receivePo", ["char", "date"], None), ("calcLeadTime", ["char"], "num")],
        subrs=["LOADSUPP", "APPRPO", "RCVPO", "PRTPO"],
        messages=["Supplier not found", "Purchase order approved", "PO already received",
                  "Supplier''s lead time: ", "Purchase orders: "],
        codes=["A", "R", "X"],
        ds=("supplierInfo", "SUPPDS"),
        display=("SUPDSP", "SUPRPT"),
    ),
    Domain(
        "payment", "PAY",
        files=[("PAYHIST", "PAYREC", ["PAYNO"]), ("PAYHISTL1", "PAYRECL1", ["PAYCUST"])],
        fields="PAYNO c10, PAYDATE d, PAYAMT p11.2, PAYMETH c2, PAYREF c20, PAYCUST c10, "
               "PAYINV c10, PAYSTAT c1",
        modern="paymentId c10, paymentDate d, paymentAmount p11.2, payMethod c2, reference v20, "
               "totalPaid p13.2, paymentCount i10, isReversed n, remaining p11.2",
        legacy="WKPAY c10, PAYTOT p13.2, WKREF c20, PAYCNT p7.0, REVFLG n",
        procs=[("postPayment", ["char", "num"], "ind"), ("reversePayment", ["char"], None),
               ("getPayTotal", ["char"], "num"), ("validatePay", ["num"], "ind")],
        subrs=["POSTPAY", "REVPAY", "LOADPAY", "SUMPAY"],
        messages=["Payment not found", "Payment reversed", "Payment posted",
                  "Invalid payment amount", "Payment''s reference missing", "Total paid: "],
        codes=["P", "R", "C"],
        ds=("paymentInfo", "PAYDS"),
        display=("PAYDSP", "PAYRPT"),
    ),
]

GENERIC_MODERN = _fields(
    "idx i10, recordCount i10, total p13.2, message v100, errorMessage v80, returnCode c7, "
    "today d, errorFlag n, isDone n, retryCount i5, amount p11.2, status c1, pageNumber i5")
GENERIC_LEGACY = _fields(
    "IDX p5.0, RECCNT p7.0, TOTAL p13.2, MSG c52, ERRMSG c80, RTNCDE c7, TODAY d, ERRFLG n, "
    "DONE n, RETRY p3.0, AMOUNT p11.2, STATUS c1, PAGENO p5.0")
ARRAYS_MODERN = _fields("monthTotals p11.2, amounts p9.2, names c30")
ARRAYS_LEGACY = _fields("MTHTOT p11.2, AMTS p9.2, NAMES c30")
CONSTANTS = [("MAX_LINES", "maxLines", "MAXLINES", "99"),
             ("TAX_RATE", "taxRate", "TAXRATE", "0.08"),
             ("MAX_RETRY", "maxRetry", "MAXRETRY", "3"),
             ("PAGE_SIZE", "pageSize", "PAGESIZE", "60"),
             ("COMPANY", "company", "COMPANY", "'ACME Distribution'"),
             ("DEFAULT_WHSE", "defaultWhse", "DFTWHSE", "'001'")]
NUMBERS = ["0", "1", "2", "3", "5", "10", "12", "25", "30", "50", "60", "90", "99", "100", "365",
           "500", "1000", "0.05", "0.08", "0.10", "1.5", "7.50", "99.99", "2500.00"]
INDICATORS = ["*in03", "*in12", "*in40", "*in50", "*in90", "*in99"]
ERROR_CODES = ["1211", "1218", "00100", "00102", "01021"]
EDIT_CODES = ["J", "1", "3", "Z", "L"]
COMMENTS = [
    "Read the next record", "Check the credit limit", "Calculate the totals",
    "Update the master record", "Main processing loop", "Initialise work fields",
    "Print the detail line", "Validate the input", "Handle the error", "Set on last record",
    "Write the audit record", "Accumulate the amounts", "Position the file",
    "TODO: remove after conversion", "Added for ticket 4711", "Changed 2019 - new tax rules",
    "Do not change without approval", "Retrieve the record by key", "Loop until end of file",
    "Build the message text", "Ship the open lines", "Clear the screen fields",
]
AUTHORS = ["J. Smith", "M. Jones", "R. Patel", "K. Nguyen", "A. Garcia", "L. Chen"]
PURPOSES = ["maintenance", "inquiry", "batch update", "nightly report", "month-end close",
            "credit check", "data conversion", "validation"]

_OPS = ["=", "<>", ">", "<", ">=", "<="]
_FIXED_OPS = {"=": "EQ", "<>": "NE", ">": "GT", "<": "LT", ">=": "GE", "<=": "LE"}
_SIMPLE = re.compile(r"^(?:[A-Za-z*#@$][\w#@$]*|[\d.]+|'[^']*')$")
_LITERAL = re.compile(r"'(?:[^']|'')*'")
_PIECE = re.compile(r"(?:'(?:[^']|'')*'|[^\s'])+")
_SUBPIECE = re.compile(r"(?:'(?:[^']|'')*'|[^:('])+[:(]?|[:(]")


def _check_pools():
    names = [n for d in DOMAINS for n, _ in d.fields + d.modern + d.legacy]
    names += [n for n, _ in GENERIC_MODERN + GENERIC_LEGACY + ARRAYS_MODERN + ARRAYS_LEGACY]
    names += [p[0] for d in DOMAINS for p in d.procs] + [s for d in DOMAINS for s in d.subrs]
    too_long = [n for n in names if len(n) > MAX_NAME]
    assert not too_long, too_long


_check_pools()


def upper_code(line: str) -> str:
    """Upper-case a line of code except the contents of string literals."""
    parts, last = [], 0
    for match in _LITERAL.finditer(line):
        parts.append(line[last:match.start()].upper())
        parts.append(match.group())
        last = match.end()
    parts.append(line[last:].upper())
    return "".join(parts)


# ----------------------------------------------------------------------------------------
# The abstract program. Statements are tuples; conditions are tuples too:
#   ("cmp", left, op, right) ("and", a, b) ("or", a, b) ("not", a) ("raw", text)

def cond_text(cond) -> str:
    tag = cond[0]
    if tag == "cmp":
        return f"{cond[1]} {cond[2]} {cond[3]}"
    if tag in ("and", "or"):
        return f"{_wrap(cond[1])} {tag} {_wrap(cond[2])}"
    if tag == "not":
        inner = cond_text(cond[1])
        return f"not {inner}" if cond[1][0] == "raw" else f"not ({inner})"
    return cond[1]


def _wrap(cond) -> str:
    text = cond_text(cond)
    return f"({text})" if cond[0] in ("and", "or") else text


class Var:
    __slots__ = ("name", "type", "kind", "dim")

    def __init__(self, name, rpg_type, dim=0):
        self.name, self.type, self.kind, self.dim = name, rpg_type, kind_of(rpg_type), dim


class Proc:
    def __init__(self, name, params, returns):
        self.name, self.params, self.returns = name, params, returns  # params: [Var]


class _Builder:
    """Builds one program: the choices, then the rendering in free or fixed form."""

    def __init__(self, rng, index, fixed=None):
        self.rng = rng
        self.index = index
        drawn = rng.random() < FIXED_SHARE
        self.fixed = drawn if fixed is None else bool(fixed)
        self.sql = (not self.fixed) and rng.random() < SQL_SHARE_OF_FREE
        # fixed programs: classic C specs, C specs with /free blocks, or column-8 free calcs
        self.calc_style = (self._pick([("classic", 6), ("blocks", 3), ("col8", 2)])
                           if self.fixed else "free")
        self.legacy = self.fixed and rng.random() < 0.75
        self.upper = self.legacy or ((not self.fixed) and rng.random() < 0.12)
        self.domain = rng.choice(DOMAINS)
        others = [d for d in DOMAINS if d is not self.domain]
        self.domains = [self.domain] + ([rng.choice(others)] if rng.random() < 0.4 else [])
        self.field_types = [f for d in self.domains for f in d.fields]
        self.indent = rng.choice([2, 2, 3, 4])
        self.seq_numbers = self.fixed and rng.random() < 0.25
        self.change_marks = self.fixed and rng.random() < 0.3
        self.comment_rate = rng.choice([0.05, 0.1, 0.2])
        self.loop_depth = 0
        self.current_subr = None
        self.files = []       # [(file, format, keys, usage)]
        self.vars = []        # declared scalars and file fields
        self.arrays = []
        self.consts = []
        self.ds = None        # (name, [Var])
        self.procs = []
        self.subrs = []
        self.klists = {}      # file -> KLIST name (fixed, composite keys)
        self.displays = []    # ("workstn"|"printer", file, formats)

    # -- small helpers ------------------------------------------------------------------
    def _pick(self, weighted):
        total = sum(w for _, w in weighted)
        x = self.rng.random() * total
        for item, w in weighted:
            x -= w
            if x < 0:
                return item
        return weighted[-1][0]

    def chance(self, p):
        return self.rng.random() < p

    def name(self, text):
        return text.upper() if self.legacy else text

    def vars_of(self, kind):
        out = [v for v in self.vars if v.kind == kind]
        if self.ds:
            ds_name, subfields = self.ds
            out += [Var(f"{ds_name}.{s.name}", s.type) for s in subfields if s.kind == kind]
        return out

    def var(self, kind):
        pool = self.vars_of(kind)
        return self.rng.choice(pool).name if pool else None

    def message(self):
        domain = self.rng.choice(self.domains)
        return "'" + self.rng.choice(domain.messages) + "'"

    # -- declarations -------------------------------------------------------------------
    def plan(self):
        rng = self.rng
        for domain in self.domains:
            chosen = [f for f in domain.files if self.chance(0.6)] or [domain.files[0]]
            for file, fmt, keys in chosen:
                usage = self._pick([("input", 5), ("update", 3), ("output", 1), ("both", 1)])
                self.files.append((file, fmt, keys, usage))
                for fname, ftype in domain.fields:
                    if not any(v.name == fname for v in self.vars) and self.chance(0.7):
                        self.vars.append(Var(fname, ftype))
                if len(keys) > 1 and self.fixed:
                    self.klists[file] = (file[:4] + "KEY").upper()
        locals_pool = []
        for domain in self.domains:
            locals_pool += domain.legacy if self.legacy else domain.modern
        locals_pool += GENERIC_LEGACY if self.legacy else GENERIC_MODERN
        taken = {n.upper() for d in self.domains for n, _ in d.fields}
        locals_pool = [(n, t) for n, t in locals_pool if n.upper() not in taken]
        rng.shuffle(locals_pool)
        count = rng.randrange(6, min(16, len(locals_pool)))
        self.locals = [Var(n, t) for n, t in locals_pool[:count]]
        for kind in ("num", "char", "ind"):
            if not any(v.kind == kind for v in self.locals):
                extra = [Var(n, t) for n, t in locals_pool if kind_of(t) == kind]
                if extra:
                    self.locals.append(extra[0])
        self.vars += self.locals
        if self.chance(0.45):
            pool = ARRAYS_LEGACY if self.legacy else ARRAYS_MODERN
            name, rpg_type = rng.choice(pool)
            self.arrays.append(Var(name, rpg_type, dim=rng.choice([10, 12, 50, 100])))
        for upper, modern, legacy, value in CONSTANTS:
            if self.chance(0.25):
                name = legacy if self.legacy else (upper if self.chance(0.5) else modern)
                self.consts.append((name, value))
        if self.chance(0.45):
            ds_name = self.domain.ds[1] if self.legacy else self.domain.ds[0]
            pool = list(self.domain.legacy if self.legacy else self.domain.modern)
            rng.shuffle(pool)
            self.ds = (ds_name, [Var(n, t) for n, t in pool[: rng.randrange(2, 5)]])
        if self.chance(0.25):
            kind = self._pick([("workstn", 2), ("printer", 3)])
            dspf, prtf = self.domain.display
            if kind == "workstn":
                self.displays.append(("workstn", dspf, ["PANEL1", "PANEL2"]))
            else:
                self.displays.append(("printer", prtf, ["HEADER", "DETAIL", "TOTALS"]))
        proc_pool = list(self.domain.procs)
        rng.shuffle(proc_pool)
        for pname, pkinds, returns in proc_pool[: rng.randrange(0, 4)]:
            params, used = [], {}
            for kind in pkinds:
                names = {"char": ["pKey", "pCode"], "num": ["pAmount", "pValue"],
                         "date": ["pDate", "pDate2"], "ind": ["pFlag", "pFlag2"]}[kind]
                pn = names[used.get(kind, 0)]
                used[kind] = used.get(kind, 0) + 1
                base = {"char": "c10", "num": "p11.2", "date": "d", "ind": "n"}[kind]
                params.append(Var(self.name(pn), _t(base)))
            self.procs.append(Proc(self.name(pname), params, returns))
        subr_pool = list(self.domain.subrs)
        rng.shuffle(subr_pool)
        self.subrs = subr_pool[: rng.randrange(0, 4)]
        if self.fixed and self.chance(0.15):
            self.subrs.append("*INZSR")

    # -- expressions --------------------------------------------------------------------
    def num_expr(self, depth=0):
        rng = self.rng
        nums = self.vars_of("num")
        choice = self._pick([("var", 4), ("lit", 2), ("bin", 4 - depth * 2), ("bif", 2),
                             ("call", 1), ("arr", 1), ("const", 1)])
        if choice == "var" and nums:
            return rng.choice(nums).name
        if choice == "bin" and depth < 2:
            left = self.num_expr(depth + 1)
            right = self.num_expr(depth + 1)
            op = rng.choice(["+", "-", "*", "+", "-"])
            text = f"{left} {op} {right}"
            return f"({text})" if depth and self.chance(0.5) else text
        if choice == "bif":
            chars = self.vars_of("char")
            pick = self._pick([("len", 2), ("int", 1), ("abs", 1), ("dec", 1), ("elem", 1),
                               ("diff", 1), ("scan", 1)])
            if pick == "len" and chars:
                return f"%len(%trim({rng.choice(chars).name}))"
            if pick == "elem" and self.arrays:
                return f"%elem({self.arrays[0].name})"
            if pick == "diff":
                dates = self.vars_of("date")
                if dates:
                    return f"%diff({rng.choice(dates).name}:%date():*days)"
            if pick == "scan" and chars:
                return f"%scan({self.message()}:{rng.choice(chars).name})"
            if nums:
                name = rng.choice(nums).name
                return {"int": f"%int({name})", "abs": f"%abs({name})",
                        "dec": f"%dec({name}:11:2)"}.get(pick, f"%abs({name})")
        if choice == "call":
            procs = [p for p in self.procs if p.returns == "num"]
            if procs:
                return self.call_text(rng.choice(procs))
        if choice == "arr" and self.arrays and self.arrays[0].kind == "num":
            return f"{self.arrays[0].name}({self.index_expr()})"
        if choice == "const":
            consts = [name for name, value in self.consts if not value.startswith("'")]
            if consts:
                return rng.choice(consts)
        return rng.choice(NUMBERS)

    def index_expr(self):
        nums = [v.name for v in self.vars_of("num")
                if v.type[0] == "int" or v.name.upper() == "IDX"]
        return self.rng.choice(nums) if nums else self.rng.choice(["1", "2", "12"])

    def char_expr(self, depth=0):
        rng = self.rng
        chars = self.vars_of("char")
        nums = self.vars_of("num")
        choice = self._pick([("var", 3), ("lit", 3), ("trim", 2), ("concat", 3 - depth * 3),
                             ("subst", 1), ("char", 2), ("editc", 1), ("blanks", 1), ("call", 1),
                             ("upper", 1)])
        if choice == "var" and chars:
            return rng.choice(chars).name
        if choice == "trim" and chars:
            return f"%trim({rng.choice(chars).name})"
        if choice == "concat" and depth < 1:
            return f"{self.char_expr(depth + 1)} + {self.char_expr(depth + 1)}"
        if choice == "subst" and chars:
            return f"%subst({rng.choice(chars).name}:1:{rng.choice(['1', '2', '3', '5', '10'])})"
        if choice == "char" and nums:
            return f"%char({rng.choice(nums).name})"
        if choice == "editc" and nums:
            return f"%editc({rng.choice(nums).name}:'{rng.choice(EDIT_CODES)}')"
        if choice == "blanks" and depth == 0:
            return "*blanks"
        if choice == "upper" and chars:
            return f"%xlate(lower:upper:{rng.choice(chars).name})" if self.chance(0.3) else \
                f"%upper({rng.choice(chars).name})"
        if choice == "call":
            procs = [p for p in self.procs if p.returns == "char"]
            if procs:
                return self.call_text(rng.choice(procs))
        if self.chance(0.5):
            domain = rng.choice(self.domains)
            return "'" + rng.choice(domain.codes) + "'"
        return self.message()

    def date_expr(self):
        dates = self.vars_of("date")
        pick = self._pick([("today", 2), ("add", 2), ("var", 1)])
        if pick == "add" and dates:
            unit = self.rng.choice(["%days", "%months", "%years"])
            count = self.rng.choice(["1", "30", "60", "90", "12"])
            return f"{self.rng.choice(dates).name} + {unit}({count})"
        if pick == "var" and dates:
            return self.rng.choice(dates).name
        return "%date()"

    def expr(self, kind):
        if kind == "num":
            return self.num_expr()
        if kind == "char":
            return self.char_expr()
        if kind == "date":
            return self.date_expr()
        return self.rng.choice(["*on", "*off"])

    def call_text(self, proc):
        args = []
        for param in proc.params:
            if param.kind == "char":
                args.append(self.var("char") or self.message())
            elif param.kind == "num":
                args.append(self.var("num") or "0")
            elif param.kind == "date":
                args.append(self.var("date") or "%date()")
            else:
                args.append("*on")
        return f"{proc.name}({':'.join(args)})"

    def cond(self, depth=0):
        rng = self.rng
        pick = self._pick([("num", 4), ("char", 3), ("ind", 2), ("file", 2), ("indic", 1),
                           ("and", 2 - depth * 2), ("or", 1 - depth), ("not", 1)])
        if pick in ("and", "or") and depth == 0:
            return (pick, self.cond(depth + 1), self.cond(depth + 1))
        if pick == "not" and depth == 0:
            inner = self.cond(depth + 1)
            return ("not", inner) if inner[0] != "not" else inner
        if pick == "ind":
            inds = self.vars_of("ind")
            if inds:
                name = rng.choice(inds).name
                if self.chance(0.3):
                    return ("cmp", name, "=", rng.choice(["*on", "*off"]))
                return ("raw", name)
        if pick == "file" and self.files:
            file = rng.choice(self.files)[0]
            bif = rng.choice(["%found", "%eof"])
            return ("raw", f"{bif}({file})")
        if pick == "indic":
            return ("cmp", rng.choice(INDICATORS), "=", rng.choice(["*on", "*off"]))
        if pick == "char":
            chars = self.vars_of("char")
            if chars:
                name = rng.choice(chars).name
                if self.chance(0.3):
                    return ("cmp", name, rng.choice(["=", "<>"]), "*blanks")
                domain = rng.choice(self.domains)
                return ("cmp", name, rng.choice(["=", "<>"]), "'" + rng.choice(domain.codes) + "'")
        nums = self.vars_of("num")
        if nums:
            left = rng.choice(nums).name
            right = self.num_expr(1) if self.chance(0.5) else rng.choice(NUMBERS)
            return ("cmp", left, rng.choice(_OPS), right)
        return ("raw", "*in99")

    # -- statements ---------------------------------------------------------------------
    def block(self, depth, count):
        out = []
        for _ in range(count):
            if self.chance(self.comment_rate):
                out.append(("comment", self.rng.choice(COMMENTS)))
            out.append(self.statement(depth))
        return out

    def statement(self, depth):
        rng = self.rng
        weights = [("assign", 10), ("callp", 2), ("dsply", 1), ("clear", 1), ("exsr", 2),
                   ("chain", 3), ("write", 1), ("leave", 1 if self.loop_depth else 0)]
        if depth < 3:
            weights += [("if", 6), ("dow", 1), ("dou", 1), ("for", 2), ("select", 2),
                        ("monitor", 1), ("readloop", 2)]
        if self.displays:
            weights.append(("display", 1))
        if self.sql:
            weights.append(("sql", 3))
        kind = self._pick(weights)
        if kind == "assign":
            return self.assignment()
        if kind == "callp":
            procs = [p for p in self.procs if p.returns is None] or self.procs
            if procs:
                proc = rng.choice(procs)
                return ("callp", self.call_text(proc), rng.choice(["callp", "plain"]))
            return self.assignment()
        if kind == "dsply":
            chars = self.vars_of("char")
            if chars and self.chance(0.5):
                return ("dsply", rng.choice(chars).name)
            return ("dsply", self.message())
        if kind == "clear":
            pool = self.vars + ([Var(self.ds[0], ("char", 1))] if self.ds else [])
            return (rng.choice(["clear", "clear", "reset"]), rng.choice(pool).name)
        if kind == "exsr":
            subrs = [s for s in self.subrs if s not in ("*INZSR", self.current_subr)]
            if subrs:
                return ("exsr", rng.choice(subrs))
            return self.assignment()
        if kind == "chain" and self.files:
            readable = [f for f in self.files if f[3] != "output"]
            if readable:
                file = rng.choice(readable)
                found = self.block(depth + 1, rng.randrange(1, 4))
                missing = self.block(depth + 1, 1) if self.chance(0.5) else None
                if file[3] in ("update", "both") and self.chance(0.6):
                    found.append(("update", file[1]))
                return ("chain", self.key_of(file), file, found, missing)
        if kind == "write" and self.files:
            writable = [f for f in self.files if f[3] in ("output", "both", "update")]
            if writable:
                return ("write", rng.choice(writable)[1])
        if kind == "leave":
            return ("if", self.cond(), [(rng.choice(["leave", "iter"]),)], [], None)
        if kind == "if":
            body = self.block(depth + 1, rng.randrange(1, 4))
            elifs = []
            for _ in range(self._pick([(0, 6), (1, 2), (2, 1)])):
                elifs.append((self.cond(), self.block(depth + 1, rng.randrange(1, 3))))
            other = self.block(depth + 1, rng.randrange(1, 3)) if self.chance(0.4) else None
            return ("if", self.cond(), body, elifs, other)
        if kind in ("dow", "dou"):
            counter = [v for v in self.vars_of("num") if "." not in v.name]
            if counter:
                name = rng.choice(counter).name
                limit = rng.choice(["10", "99", "100", "1000"])
                self.loop_depth += 1
                body = self.block(depth + 1, rng.randrange(1, 4))
                self.loop_depth -= 1
                body.append(("assign", name, f"{name} + 1", "op"))
                op = "<" if kind == "dow" else ">="
                cond = ("cmp", name, op, limit)
                if self.chance(0.3):
                    cond = ("and", cond, self.cond(1))
                return (kind, cond, body)
            return self.assignment()
        if kind == "for":
            counter = [v for v in self.vars_of("num") if "." not in v.name and
                       (v.type[0] == "int" or v.name.upper() in ("IDX", "LINECNT", "RETRY"))]
            if counter:
                name = rng.choice(counter).name
                self.loop_depth += 1
                body = self.block(depth + 1, rng.randrange(1, 4))
                self.loop_depth -= 1
                if self.arrays:
                    arr = self.arrays[0]
                    limit = f"%elem({arr.name})"
                    target = self.var(arr.kind)
                    if target and arr.kind == "num":
                        value = f"{target} + {arr.name}({name})"
                    elif target and arr.kind == "char":
                        value = f"%trim({target}) + ' ' + {arr.name}({name})"
                    else:
                        value = None
                    if value:
                        body.insert(0, ("assign", target, value, "plain"))
                else:
                    limit = rng.choice(["10", "12", "99", self.var("num") or "10"])
                downto = self.chance(0.15)
                return ("for", name, limit, body, downto)
            return self.assignment()
        if kind == "select":
            whens = [(self.cond(1), self.block(depth + 1, rng.randrange(1, 3)))
                     for _ in range(rng.randrange(2, 5))]
            other = self.block(depth + 1, rng.randrange(1, 3)) if self.chance(0.6) else None
            return ("select", whens, other)
        if kind == "monitor":
            body = self.block(depth + 1, rng.randrange(1, 4))
            handlers = [(rng.choice(ERROR_CODES) if self.chance(0.4) else None,
                         self.block(depth + 1, rng.randrange(1, 3)))]
            if self.chance(0.2):
                handlers.append((None, [("dsply", self.message())]))
            return ("monitor", body, handlers)
        if kind == "readloop" and self.files:
            readable = [f for f in self.files if f[3] != "output"]
            if readable:
                file = rng.choice(readable)
                keyed = self.chance(0.6)
                self.loop_depth += 1
                body = self.block(depth + 1, rng.randrange(1, 5))
                self.loop_depth -= 1
                if file[3] in ("update", "both") and self.chance(0.4):
                    body.append(("update", file[1]))
                return ("readloop", self.key_of(file) if keyed else None, file, body)
        if kind == "display" and self.displays:
            return ("display",) + self.displays[0]
        if kind == "sql":
            return self.sql_statement()
        return self.assignment()

    def key_of(self, file):
        name, fmt, keys, usage = file
        if len(keys) == 1:
            key_type = next((t for n, t in self.field_types if n == keys[0]), None)
            same = [v.name for v in self.vars_of("char") if v.type == key_type and v.name != keys[0]
                    and not (self.fixed and ("." in v.name or len(v.name) > MAX_NAME))]
            return [self.rng.choice(same) if same and self.chance(0.6) else keys[0]]
        return list(keys)

    def assignment(self):
        rng = self.rng
        kind = self._pick([("num", 5), ("char", 4), ("ind", 1), ("date", 1)])
        targets = [v for v in self.vars_of(kind)]
        if not targets:
            kind, targets = "num", self.vars_of("num")
        target = rng.choice(targets).name
        if kind == "num" and self.chance(0.3):
            return ("assign", target, f"{target} + {self.num_expr(1)}",
                    rng.choice(["op", "plain", "eval"]))
        if kind == "ind" and self.chance(0.5):
            files = [f for f in self.files]
            if files:
                return ("assign", target, f"%found({rng.choice(files)[0]})", "plain")
        if kind == "num" and self.chance(0.15):
            procs = [p for p in self.procs if p.returns == "num"]
            if procs:
                return ("assign", target, self.call_text(rng.choice(procs)), "plain")
        style = "eval" if self.chance(0.2) else "plain"
        value = self.expr(kind)
        if value == target:
            value = self.expr(kind)
        if value == target:
            value = {"num": "0", "char": "*blanks", "ind": "*off", "date": "%date()"}[kind]
        return ("assign", target, value, style)

    def sql_statement(self):
        rng = self.rng
        file, fmt, keys, usage = rng.choice(self.files)
        domain = next((d for d in self.domains if any(f[0] == file for f in d.files)), self.domain)
        cols = [n for n, _ in domain.fields][:6]
        rng.shuffle(cols)
        cols = cols[: rng.randrange(1, 4)]
        hosts = [self.var("char") or "message" for _ in cols]
        key = self.var("char") or "message"
        pick = self._pick([("select", 3), ("update", 1), ("count", 1)])
        if pick == "select":
            return ("sql", [f"select {', '.join(cols)}",
                            f"into {', '.join(':' + h for h in hosts)}",
                            f"from {file}", f"where {keys[0]} = :{key}"])
        if pick == "update":
            return ("sql", [f"update {file}", f"set {cols[0]} = :{hosts[0]}",
                            f"where {keys[0]} = :{key}"])
        num = self.var("num") or "total"
        return ("sql", [f"select count(*) into :{num}", f"from {file}",
                        f"where {keys[0]} = :{key}"])

    # -- building -----------------------------------------------------------------------
    def build(self):
        rng = self.rng
        self.plan()
        self.main = self.block(0, rng.randrange(5, 16))
        self.subr_bodies = []
        for subr in self.subrs:
            self.current_subr = subr       # a subroutine does not call itself
            self.subr_bodies.append((subr, self.block(1, rng.randrange(2, 7))))
        self.current_subr = None
        self.proc_bodies = []
        for proc in self.procs:
            saved = self.vars
            self.vars = self.vars + proc.params
            body = self.block(1, rng.randrange(2, 6))
            if proc.returns:
                body.append(("return", self.expr(proc.returns)))
            self.vars = saved
            self.proc_bodies.append((proc, body))
        renderer = _FixedRenderer(self) if self.fixed else _FreeRenderer(self)
        lines = renderer.render()
        extension = ".sqlrpgle" if self.sql else ".rpgle"
        program = f"{self.domain.prefix}{'F' if self.fixed else 'R'}{self.index:04d}"
        return program + extension, "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------
# Rendering

def free_type(rpg_type) -> str:
    base = rpg_type[0]
    if base in ("char", "varchar"):
        return f"{base}({rpg_type[1]})"
    if base in ("packed", "zoned"):
        return f"{base}({rpg_type[1]}:{rpg_type[2]})"
    if base == "int":
        return f"int({rpg_type[1]})"
    return base


def fixed_type(rpg_type):
    """-> (length, internal type, decimals, keywords) of a D spec."""
    base = rpg_type[0]
    if base == "char":
        return str(rpg_type[1]), "A", "", ""
    if base == "varchar":
        return str(rpg_type[1]), "A", "", "VARYING"
    if base in ("packed", "zoned"):
        return str(rpg_type[1]), "P" if base == "packed" else "S", str(rpg_type[2]), ""
    if base == "int":
        return str(rpg_type[1]), "I", "0", ""
    if base == "date":
        return "", "D", "", ""
    return "", "N", "", ""


class _FreeRenderer:
    def __init__(self, b: _Builder):
        self.b = b
        self.rng = b.rng
        self.lines = []

    def emit(self, depth, text):
        b = self.b
        line = " " * (b.indent * depth) + text
        if b.upper:
            line = upper_code(line)
        self.lines.append(line)

    def comment(self, depth, text):
        self.lines.append(" " * (self.b.indent * depth) + "// " + text)

    def render(self):
        b, rng = self.b, self.rng
        self.lines.append(rng.choice(["**free", "**FREE", "**Free"]))
        self.header()
        opts = rng.choice([
            "ctl-opt dftactgrp(*no) actgrp(*caller);",
            "ctl-opt dftactgrp(*no) actgrp(*new) option(*srcstmt:*nodebugio);",
            "ctl-opt option(*srcstmt) datfmt(*iso) decedit('0.');",
            "ctl-opt dftactgrp(*no) bnddir('UTILS');",
        ])
        self.emit(0, opts)
        self.lines.append("")
        for file, fmt, keys, usage in b.files:
            use = {"input": "usage(*input)", "update": "usage(*update)",
                   "output": "usage(*output)", "both": "usage(*update:*output)"}[usage]
            keyed = " keyed" if usage != "output" else ""
            self.emit(0, f"dcl-f {file}{keyed} {use};")
        for kind, file, formats in b.displays:
            self.emit(0, f"dcl-f {file} workstn;" if kind == "workstn" else
                      f"dcl-f {file} printer oflind(*in90);")
        if b.files or b.displays:
            self.lines.append("")
        for name, value in b.consts:
            self.emit(0, f"dcl-c {name} {value};")
        for var in b.locals:
            inz = ""
            if var.kind == "num" and rng.random() < 0.3:
                inz = " inz(0)"
            elif var.kind == "date" and rng.random() < 0.3:
                inz = " inz(*sys)"
            self.emit(0, f"dcl-s {var.name} {free_type(var.type)}{inz};")
        for arr in b.arrays:
            self.emit(0, f"dcl-s {arr.name} {free_type(arr.type)} dim({arr.dim});")
        if b.ds:
            name, subfields = b.ds
            self.emit(0, f"dcl-ds {name} qualified;")
            for sub in subfields:
                self.emit(1, f"{sub.name} {free_type(sub.type)};")
            self.emit(0, "end-ds;")
            if rng.random() < 0.3:
                copy = rng.choice(["savedInfo", "oldValues", "workRec"])
                self.emit(0, f"dcl-ds {copy} likeds({name});")
        if rng.random() < 0.5:
            for proc in b.procs:
                self.prototype(proc, "pr")
        self.lines.append("")
        if rng.random() < 0.3:
            self.emit(0, "dcl-pi *n;")
            self.emit(1, f"{b.name('pKey')} char(10);")
            self.emit(0, "end-pi;")
            self.lines.append("")
        self.body(0, b.main)
        self.lines.append("")
        self.emit(0, "*inlr = *on;")
        self.emit(0, "return;")
        for name, body in b.subr_bodies:
            self.lines.append("")
            self.comment(0, rng.choice(COMMENTS))
            self.emit(0, f"begsr {name.lower()};")
            self.body(1, body)
            self.emit(0, "endsr;")
        for proc, body in b.proc_bodies:
            self.lines.append("")
            self.comment(0, "-" * rng.choice([20, 40, 60]))
            self.emit(0, f"dcl-proc {proc.name};")
            self.prototype(proc, "pi", depth=1)
            self.body(1, body)
            self.emit(0, "end-proc;")
        return self.lines

    def header(self):
        b, rng = self.b, self.rng
        style = rng.choice(["box", "plain", "none"])
        if style == "none":
            return
        rule = "// " + "-" * 60 if style == "box" else "//"
        self.lines.append(rule)
        self.lines.append(f"// Program . . : {b.domain.prefix}R{b.index:04d}")
        self.lines.append(f"// Purpose . . : {b.domain.name} {rng.choice(PURPOSES)}")
        self.lines.append(f"// Author  . . : {rng.choice(AUTHORS)}")
        self.lines.append(rule)

    def prototype(self, proc, kind, depth=0):
        returns = ""
        if proc.returns:
            returns = " " + free_type({"num": ("packed", 11, 2), "char": ("varchar", 100),
                                       "ind": ("ind",), "date": ("date",)}[proc.returns])
        name = proc.name if kind == "pr" else "*n"
        self.emit(depth, f"dcl-{kind} {name}{returns};")
        for param in proc.params:
            const = " const" if self.rng.random() < 0.6 else ""
            self.emit(depth + 1, f"{param.name} {free_type(param.type)}{const};")
        self.emit(depth, f"end-{kind};")

    def body(self, depth, stmts):
        for stmt in stmts:
            self.statement(depth, stmt)

    def statement(self, depth, s):
        b, rng = self.b, self.rng
        tag = s[0]
        if tag == "comment":
            self.comment(depth, s[1])
        elif tag == "assign":
            _, target, value, style = s
            if style == "op" and value.startswith(target + " + "):
                self.emit(depth, f"{target} += {value[len(target) + 3:]};")
            elif style == "eval":
                self.emit(depth, f"eval {target} = {value};")
            else:
                self.long_line(depth, f"{target} = {value};")
        elif tag == "callp":
            self.emit(depth, f"callp {s[1]};" if s[2] == "callp" else f"{s[1]};")
        elif tag == "dsply":
            self.emit(depth, f"dsply {s[1]};" if rng.random() < 0.5 else f"dsply ({s[1]});")
        elif tag in ("clear", "reset"):
            self.emit(depth, f"{tag} {s[1]};")
        elif tag == "exsr":
            self.emit(depth, f"exsr {s[1].lower()};")
        elif tag in ("leave", "iter"):
            self.emit(depth, f"{tag};")
        elif tag == "return":
            self.emit(depth, f"return {s[1]};")
        elif tag in ("write", "update"):
            self.emit(depth, f"{tag} {s[1]};")
        elif tag == "chain":
            _, keys, file, found, missing = s
            key = keys[0] if len(keys) == 1 and rng.random() < 0.5 else f"({':'.join(keys)})"
            self.emit(depth, f"chain {key} {file[0]};")
            self.emit(depth, f"if %found({file[0]});")
            self.body(depth + 1, found)
            if missing:
                self.emit(depth, "else;")
                self.body(depth + 1, missing)
            self.emit(depth, "endif;")
        elif tag == "readloop":
            _, keys, file, body = s
            name = file[0]
            if keys:
                key = keys[0] if len(keys) == 1 else f"({':'.join(keys)})"
                self.emit(depth, f"setll {key} {name};")
                read = f"reade {key} {name};"
            else:
                self.emit(depth, f"setll *loval {name};")
                read = f"read {name};"
            self.emit(depth, read)
            self.emit(depth, f"dow not %eof({name});")
            self.body(depth + 1, body)
            self.emit(depth + 1, read)
            self.emit(depth, "enddo;")
        elif tag == "if":
            _, cond, body, elifs, other = s
            self.long_line(depth, f"if {cond_text(cond)};")
            self.body(depth + 1, body)
            for c, blk in elifs:
                self.long_line(depth, f"elseif {cond_text(c)};")
                self.body(depth + 1, blk)
            if other:
                self.emit(depth, "else;")
                self.body(depth + 1, other)
            self.emit(depth, "endif;")
        elif tag in ("dow", "dou"):
            self.long_line(depth, f"{tag} {cond_text(s[1])};")
            self.body(depth + 1, s[2])
            self.emit(depth, "enddo;")
        elif tag == "for":
            _, name, limit, body, downto = s
            if downto:
                self.emit(depth, f"for {name} = {limit} downto 1;")
            else:
                step = " by 1" if rng.random() < 0.2 else ""
                self.emit(depth, f"for {name} = 1 to {limit}{step};")
            self.body(depth + 1, body)
            self.emit(depth, "endfor;")
        elif tag == "select":
            self.emit(depth, "select;")
            for c, blk in s[1]:
                self.long_line(depth + 1, f"when {cond_text(c)};")
                self.body(depth + 2, blk)
            if s[2]:
                self.emit(depth + 1, "other;")
                self.body(depth + 2, s[2])
            self.emit(depth, "endsl;")
        elif tag == "monitor":
            self.emit(depth, "monitor;")
            self.body(depth + 1, s[1])
            for code, blk in s[2]:
                self.emit(depth, f"on-error {code};" if code else "on-error;")
                self.body(depth + 1, blk)
            self.emit(depth, "endmon;")
        elif tag == "display":
            _, kind, file, formats = s
            if kind == "workstn":
                self.emit(depth, "dow not *in03;")
                self.emit(depth + 1, f"exfmt {formats[0]};")
                self.emit(depth + 1, "if *in12;")
                self.emit(depth + 2, "leave;")
                self.emit(depth + 1, "endif;")
                self.emit(depth, "enddo;")
            else:
                self.emit(depth, "if *in90;")
                self.emit(depth + 1, f"write {formats[0]};")
                self.emit(depth + 1, "*in90 = *off;")
                self.emit(depth, "endif;")
                self.emit(depth, f"write {formats[1]};")
        elif tag == "sql":
            parts = s[1]
            self.emit(depth, "exec sql " + parts[0])
            for part in parts[1:-1]:
                self.emit(depth + 2, part)
            self.emit(depth + 2, parts[-1] + ";")
            check = "if sqlcode <> 0;" if rng.random() < 0.5 else "if sqlstate <> '00000';"
            self.emit(depth, check)
            self.emit(depth + 1, f"dsply {b.message()};")
            self.emit(depth, "endif;")
        else:  # pragma: no cover - every tag is handled above
            raise ValueError(tag)

    def long_line(self, depth, text):
        """Most statements stay on one line (free form has no column limit); a few long
        ones are broken after an operator, the way people write them."""
        if len(text) > 70 and self.rng.random() < 0.5:
            pieces = _PIECE.findall(text)
            cut = len(pieces) // 2
            while cut < len(pieces) - 1 and pieces[cut - 1] not in ("+", "-", "*", "and", "or"):
                cut += 1
            if 0 < cut < len(pieces) - 1:
                self.emit(depth, " ".join(pieces[:cut]))
                self.emit(depth + 2, " ".join(pieces[cut:]))
                return
        self.emit(depth, text)


class _FixedRenderer:
    """C/D/F/H/P specs in their columns. calc_style: classic (C specs only), blocks
    (some statements in /free ... /end-free), col8 (calculations as free-form code
    from column 8, no /free)."""

    def __init__(self, b: _Builder):
        self.b = b
        self.rng = b.rng
        self.lines = []
        self.seq = 0
        self.free = _FreeRenderer(b)

    # -- raw lines ----------------------------------------------------------------------
    def add(self, text, upper=True):
        b = self.b
        if upper and b.legacy:
            text = upper_code(text)
        text = text.rstrip()
        assert len(text) <= 80, text
        if b.seq_numbers:
            self.seq += 100
            text = f"{self.seq % 100000:05d}" + text[5:]
        if b.change_marks and len(text) > 6 and self.rng.random() < 0.08:
            text = text.ljust(80) + self.rng.choice(["CHG001", "TKT4711", "JS0419", "FIX22"])
        self.lines.append(text)

    @staticmethod
    def put(buf, column, text):
        for i, ch in enumerate(text):
            if column - 1 + i < len(buf):
                buf[column - 1 + i] = ch

    def spec(self, letter, fields):
        buf = [" "] * 80
        self.put(buf, 6, letter)
        for column, text in fields:
            self.put(buf, column, text)
        self.add("".join(buf))

    def comment(self, text):
        if self.rng.random() < 0.5:
            self.add("      * " + text, upper=False)
        else:
            self.add("     C* " + text, upper=False)

    def c(self, op="", f1="", f2="", result="", length="", dec="", ind="", ext=None, cond=""):
        """One C spec; an extended factor 2 longer than 45 columns continues on more lines."""
        if self.b.legacy:
            op, f1, f2, result = (upper_code(x) for x in (op, f1, f2, result))
            ext = upper_code(ext) if ext is not None else None
        else:
            op = op.upper()
        assert len(f1) <= 14 and len(op) <= 10 and len(f2) <= 14 and len(result) <= 14, \
            (f1, op, f2, result)
        if ext is None:
            self.spec("C", [(9, cond), (12, f1), (26, op), (36, f2), (50, result),
                            (64, length.rjust(5)), (69, dec.rjust(2)), (71, ind)])
            return
        chunks = self.chunks(ext, 45)
        self.spec("C", [(9, cond), (12, f1), (26, op), (36, chunks[0])])
        for chunk in chunks[1:]:
            self.spec("C", [(36, chunk)])

    @staticmethod
    def chunks(text, width):
        pieces = []
        for piece in _PIECE.findall(text):
            pieces += _SUBPIECE.findall(piece) if len(piece) > width else [piece]
        out, current = [], ""
        for piece in pieces:
            candidate = f"{current} {piece}" if current else piece
            if len(candidate) <= width or not current:
                current = candidate
            else:
                out.append(current)
                current = piece
        out.append(current)
        return out

    def d(self, name="", dtype="", length="", itype="", dec="", kw="", ext="", indent=1, frm=""):
        kws = self.chunks(kw, 37) if kw else [""]
        indent = max(0, min(indent, 15 - len(name)))
        assert len(name) <= 15, name
        self.spec("D", [(7 + indent, name), (22, ext), (24, dtype),
                        (26, frm.rjust(7) if frm else ""),
                        (33, length.rjust(7) if length else ""), (40, itype),
                        (41, dec.rjust(2) if dec else ""), (44, kws[0])])
        for more in kws[1:]:
            self.spec("D", [(44, more)])

    # -- program ------------------------------------------------------------------------
    def render(self):
        b, rng = self.b, self.rng
        self.header()
        kw = rng.choice(["DFTACTGRP(*NO) ACTGRP(*CALLER)", "DFTACTGRP(*NO) OPTION(*SRCSTMT)",
                         "DATFMT(*ISO) DECEDIT('0.')", "DEBUG(*YES)", "OPTION(*NODEBUGIO)"])
        if not b.legacy and rng.random() < 0.3:
            kw = kw.lower()
        self.spec("H", [(rng.choice([7, 8]), kw)])
        for file, fmt, keys, usage in b.files:
            ftype, add = {"input": ("IF", ""), "update": ("UF", ""), "output": ("O ", ""),
                          "both": ("UF", "A")}[usage]
            key = "K" if usage != "output" else ""
            self.spec("F", [(7, file), (17, ftype), (20, add), (22, "E"), (34, key), (36, "DISK")])
        for kind, file, formats in b.displays:
            if kind == "workstn":
                self.spec("F", [(7, file), (17, "CF"), (22, "E"), (36, "WORKSTN")])
            else:
                self.spec("F", [(7, file), (17, "O "), (22, "E"), (36, "PRINTER"),
                                (44, "OFLIND(*IN90)")])
        if b.calc_style == "col8" and rng.random() < 0.5:
            self.free_declarations()
        else:
            self.fixed_declarations()
        for proc in b.procs:
            self.fixed_prototype(proc, "PR")
        if b.legacy and rng.random() < 0.3:
            self.c("PLIST", f1="*ENTRY")
            self.c("PARM", result="PKEY", length="10")
        for file, klist in b.klists.items():
            keys = next(f[2] for f in b.files if f[0] == file)
            self.c("KLIST", f1=klist)
            for key in keys:
                self.c("KFLD", result=key)
        self.body(b.main)
        if rng.random() < 0.5:
            self.c("SETON", ind="LR")
        else:
            self.calc(("assign", "*inlr", "*on", "eval"))
        self.c("RETURN")
        for name, body in b.subr_bodies:
            self.comment(rng.choice(COMMENTS))
            self.c("BEGSR", f1=name)
            self.body(body)
            self.c("ENDSR")
        for proc, body in b.proc_bodies:
            self.add("      *" + "-" * rng.choice([30, 60, 73]), upper=False)
            self.spec("P", [(7, proc.name), (24, "B")])
            self.fixed_prototype(proc, "PI")
            self.body(body)
            self.spec("P", [(7, proc.name), (24, "E")])
        return self.lines

    def header(self):
        b, rng = self.b, self.rng
        if rng.random() < 0.2:
            return
        self.add("      *" + "=" * 60, upper=False)
        self.add(f"      * Program: {b.domain.prefix}F{b.index:04d} - {b.domain.name} "
                 f"{rng.choice(PURPOSES)}", upper=False)
        self.add(f"      * Written by {rng.choice(AUTHORS)}", upper=False)
        self.add("      *" + "=" * 60, upper=False)

    def fixed_declarations(self):
        b, rng = self.b, self.rng
        for name, value in b.consts:
            kw = f"CONST({value})" if rng.random() < 0.5 else value
            self.d(name, "C", kw=kw)
        for var in b.locals:
            length, itype, dec, kw = fixed_type(var.type)
            if var.kind == "num" and rng.random() < 0.25:
                kw = (kw + " INZ(0)").strip()
            self.d(var.name, "S", length, itype, dec, kw, indent=rng.choice([0, 1, 1]))
        for arr in b.arrays:
            length, itype, dec, kw = fixed_type(arr.type)
            self.d(arr.name, "S", length, itype, dec, (kw + f" DIM({arr.dim})").strip())
        if b.ds:
            name, subfields = b.ds
            self.d(name, "DS", kw="QUALIFIED")
            for sub in subfields:
                length, itype, dec, kw = fixed_type(sub.type)
                self.d(sub.name, "", length, itype, dec, kw, indent=2)
            if rng.random() < 0.2:
                self.d(b.domain.files[0][0][:6] + "DS", "DS", ext="E",
                       kw=f"EXTNAME({b.domain.files[0][0]})")

    def free_declarations(self):
        """Modern fixed-form programs may declare in free form, from column 8."""
        saved = self.free.lines
        self.free.lines = []
        b = self.b
        for name, value in b.consts:
            self.free.emit(0, f"dcl-c {name} {value};")
        for var in b.locals:
            self.free.emit(0, f"dcl-s {var.name} {free_type(var.type)};")
        for arr in b.arrays:
            self.free.emit(0, f"dcl-s {arr.name} {free_type(arr.type)} dim({arr.dim});")
        if b.ds:
            name, subfields = b.ds
            self.free.emit(0, f"dcl-ds {name} qualified;")
            for sub in subfields:
                self.free.emit(1, f"{sub.name} {free_type(sub.type)};")
            self.free.emit(0, "end-ds;")
        for line in self.free.lines:
            self.add("       " + line if line.strip() else "", upper=False)
        self.free.lines = saved

    def fixed_prototype(self, proc, kind):
        rtype = {"num": ("packed", 11, 2), "char": ("varchar", 100), "ind": ("ind",),
                 "date": ("date",)}.get(proc.returns)
        length, itype, dec, kw = fixed_type(rtype) if rtype else ("", "", "", "")
        self.d(proc.name, kind, length, itype, dec, kw)
        for param in proc.params:
            length, itype, dec, kw = fixed_type(param.type)
            if self.rng.random() < 0.6:
                kw = (kw + " CONST").strip()
            self.d(param.name, "", length, itype, dec, kw, indent=3)

    # -- calculations -------------------------------------------------------------------
    def body(self, stmts):
        b, rng = self.b, self.rng
        i = 0
        while i < len(stmts):
            if b.calc_style == "col8":
                self.free_lines(stmts[i:i + 1], prefix="       ")
                i += 1
            elif b.calc_style == "blocks" and rng.random() < 0.3:
                n = rng.randrange(1, 4)
                self.add("      /free" if rng.random() < 0.7 else "      /FREE", upper=False)
                self.free_lines(stmts[i:i + n], prefix="        ")
                end = "      /end-free" if rng.random() < 0.7 else "      /END-FREE"
                self.add(end, upper=False)
                i += n
            else:
                self.calc(stmts[i])
                i += 1

    def free_lines(self, stmts, prefix):
        saved = self.free.lines
        self.free.lines = []
        self.free.body(0, stmts)
        for line in self.free.lines:
            if not line.strip():
                self.add("", upper=False)
                continue
            code = line.lstrip()
            indent = prefix + line[: min(len(line) - len(code), 24)]
            fits = len(indent) + len(code) <= 80
            chunks = [code] if fits else self.chunks(code, 80 - len(indent) - 2)
            self.add(indent + chunks[0], upper=False)
            for chunk in chunks[1:]:
                self.add(indent + "  " + chunk, upper=False)
        self.free.lines = saved

    def calc(self, s):
        b, rng = self.b, self.rng
        tag = s[0]
        if tag == "comment":
            self.comment(s[1])
        elif tag == "assign":
            _, target, value, style = s
            simple_target = len(target) <= 14 and "." not in target
            if b.legacy and simple_target and rng.random() < 0.5:
                var = next((v for v in b.vars if v.name == target), None)
                addend = value[len(target) + 3:] if value.startswith(target + " + ") else None
                if var and var.kind == "num" and addend and _SIMPLE.match(addend) \
                        and len(addend) <= 14:
                    self.c("ADD", f2=addend, result=target)
                    return
                if var and var.kind == "num" and _SIMPLE.match(value) and len(value) <= 14:
                    self.c("Z-ADD", f2=value, result=target)
                    return
                if var and var.kind == "char" and _SIMPLE.match(value) and len(value) <= 14:
                    self.c(rng.choice(["MOVEL", "MOVE"]), f2=value, result=target)
                    return
            if style == "op" and value.startswith(target + " + ") and not b.legacy:
                self.c("EVAL", ext=f"{target} += {value[len(target) + 3:]}")
            else:
                op = "EVAL(H)" if rng.random() < 0.1 else "EVAL"
                self.c(op, ext=f"{target} = {value}")
        elif tag == "callp":
            self.c("CALLP", ext=s[1])
        elif tag == "dsply":
            if len(s[1]) <= 14:
                self.c("DSPLY", f1=s[1])
            else:
                msg = "MSG" if b.legacy else "message"
                self.c("EVAL", ext=f"{msg} = {s[1]}")
                self.c("DSPLY", f1=msg)
        elif tag in ("clear", "reset"):
            self.c(tag.upper(), result=s[1])
        elif tag == "exsr":
            self.c("EXSR", f2=s[1])
        elif tag in ("leave", "iter"):
            self.c(tag.upper())
        elif tag == "return":
            self.c("RETURN", ext=s[1])
        elif tag in ("write", "update"):
            self.c(tag.upper(), f2=s[1])
        elif tag == "chain":
            _, keys, file, found, missing = s
            key = b.klists.get(file[0], keys[0]) if len(keys) > 1 else keys[0]
            if b.legacy and rng.random() < 0.4:
                self.c("CHAIN", f1=key, f2=file[0], ind="90")
                self.c("IF", ext="NOT *IN90")
            else:
                self.c("CHAIN", f1=key, f2=file[0])
                self.c("IF", ext=f"%FOUND({file[0]})")
            self.body(found)
            if missing:
                self.c("ELSE")
                self.body(missing)
            self.c("ENDIF")
        elif tag == "readloop":
            _, keys, file, body = s
            name = file[0]
            if keys:
                key = b.klists.get(name, keys[0]) if len(keys) > 1 else keys[0]
                self.c("SETLL", f1=key, f2=name)
                read = ("READE", key)
            else:
                self.c("SETLL", f1="*LOVAL", f2=name)
                read = ("READ", "")
            self.c(read[0], f1=read[1], f2=name)
            self.c("DOW", ext=f"NOT %EOF({name})")
            self.body(body)
            self.c(read[0], f1=read[1], f2=name)
            self.c("ENDDO")
        elif tag == "if":
            _, cond, body, elifs, other = s
            if b.legacy and not elifs and cond[0] == "cmp" and _SIMPLE.match(cond[1]) \
                    and _SIMPLE.match(cond[3]) and len(cond[1]) <= 14 and len(cond[3]) <= 14 \
                    and rng.random() < 0.4:
                self.c("IF" + _FIXED_OPS[cond[2]], f1=cond[1], f2=cond[3])
            else:
                self.c("IF", ext=cond_text(cond))
            self.body(body)
            for c, blk in elifs:
                self.c("ELSEIF", ext=cond_text(c))
                self.body(blk)
            if other:
                self.c("ELSE")
                self.body(other)
            self.c("ENDIF")
        elif tag in ("dow", "dou"):
            cond = s[1]
            if b.legacy and cond[0] == "cmp" and len(cond[1]) <= 14 and rng.random() < 0.4:
                self.c(tag.upper() + _FIXED_OPS[cond[2]], f1=cond[1], f2=cond[3])
            else:
                self.c(tag.upper(), ext=cond_text(cond))
            self.body(s[2])
            self.c("ENDDO")
        elif tag == "for":
            _, name, limit, body, downto = s
            self.c("FOR", ext=f"{name} = {limit} DOWNTO 1" if downto else f"{name} = 1 TO {limit}")
            self.body(body)
            self.c("ENDFOR")
        elif tag == "select":
            self.c("SELECT")
            for c, blk in s[1]:
                self.c("WHEN", ext=cond_text(c))
                self.body(blk)
            if s[2]:
                self.c("OTHER")
                self.body(s[2])
            self.c("ENDSL")
        elif tag == "monitor":
            self.c("MONITOR")
            self.body(s[1])
            for code, blk in s[2]:
                self.c("ON-ERROR", ext=code or "")
                self.body(blk)
            self.c("ENDMON")
        elif tag == "display":
            _, kind, file, formats = s
            if kind == "workstn":
                self.c("DOW", ext="NOT *IN03")
                self.c("EXFMT", f2=formats[0])
                self.c("IF", ext="*IN12")
                self.c("LEAVE")
                self.c("ENDIF")
                self.c("ENDDO")
            else:
                self.c("IF", ext="*IN90")
                self.c("WRITE", f2=formats[0])
                self.c("EVAL", ext="*IN90 = *OFF")
                self.c("ENDIF")
                self.c("WRITE", f2=formats[1])
        else:  # pragma: no cover - sql appears only in free programs
            raise ValueError(tag)


def generate_program(rng, index: int, fixed: bool | None = None) -> tuple[str, str]:
    """One synthetic RPG program: (file name, source text). Deterministic given the
    state of `rng` (a `random.Random`) and `index` (which only names the program).
    The form is drawn from `rng` (fixed with probability FIXED_SHARE) unless `fixed`
    says which one to write."""
    return _Builder(rng, index, fixed).build()
