      * CCS TRANSACTION ARCHIVE EXTRACT - RECLN 160 - CODE PAGE 037
       01  TXN-ARCH-REC.
           05  TA-REC-TYPE               PIC X(01).
               88  TA-IS-HEADER          VALUE 'H'.
               88  TA-IS-DETAIL          VALUE 'D'.
               88  TA-IS-TRAILER         VALUE 'T'.
           05  TA-BODY                   PIC X(159).
           05  TA-HEADER REDEFINES TA-BODY.
               10  TH-EXTRACT-DT         PIC X(08).
               10  TH-SYSTEM-ID          PIC X(08).
               10  FILLER                PIC X(143).
           05  TA-DETAIL REDEFINES TA-BODY.
               10  TD-TXN-SEQ            PIC S9(18) COMP.
               10  TD-ACCT-NO            PIC X(16).
               10  TD-CARD-NO            PIC X(19).
               10  TD-TXN-CD             PIC X(04).
               10  TD-DC-FLG             PIC X(01).
               10  TD-TXN-AMT            PIC S9(13)V99 COMP-3.
               10  TD-CCY-CD             PIC 9(03).
               10  TD-TXN-DT             PIC 9(08) COMP-3.
               10  TD-POST-DT            PIC 9(08) COMP-3.
               10  TD-TXN-TM             PIC 9(06).
               10  TD-MCC                PIC X(04).
               10  TD-MER-NM             PIC X(40).
               10  TD-AUTH-CD            PIC X(06).
               10  TD-REF-NO             PIC X(23).
               10  FILLER                PIC X(11).
           05  TA-TRAILER REDEFINES TA-BODY.
               10  TT-DETAIL-COUNT       PIC 9(09).
               10  TT-AMOUNT-TOTAL       PIC S9(15)V99 COMP-3.
               10  FILLER                PIC X(141).
